"""The sign-in and code rules again, each request in a transaction of its own, as in production.

Elsewhere each test runs inside a transaction, where a batched transaction is a savepoint; here,
on PostgreSQL, each batch sends its own BEGIN and COMMIT (project/prepared_statements.py).
"""

import pytest

from tests import test_auth_flow, test_otp_rules

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

globals().update(
    {
        name: test
        for module in (test_auth_flow, test_otp_rules)
        for name, test in vars(module).items()
        if name.startswith("test_")
    }
)
