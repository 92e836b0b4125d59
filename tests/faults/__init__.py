# A package, so that the private stack fixture (package scope, conftest.py) ends with the last fault test
# and later test directories run against the shared stack again.
