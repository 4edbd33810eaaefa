"""The tools reeltable is measured against, as people would set them up."""
