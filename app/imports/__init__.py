"""Imports of CSV files: uploads kept in the database, and the jobs for big ones."""
