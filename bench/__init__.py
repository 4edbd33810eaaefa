"""`make bench`: reeltable against Datasette, Flask-Admin and sqlite-web on one file."""
