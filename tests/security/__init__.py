import pytest

# The helpers shared with tests/hostile and tests/fuzz are no conftest: pytest rewrites their asserts too.
pytest.register_assert_rewrite("tests.security.helpers")
