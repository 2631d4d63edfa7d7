"""Fixtures shared by every test layer. Integration fixtures live in tests/integration/conftest.py."""
