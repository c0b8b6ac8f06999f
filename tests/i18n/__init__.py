"""Languages and accessibility.

A package, so that this folder's conftest.py does not take the place of the
shared tests/conftest.py that other test files import helpers from.
"""
