"""Entries of tests/test_access_matrix.py's MATRIX, one module per part of the API (each
defines ENTRIES: URL name -> Entry), so that they are written beside their resources."""
