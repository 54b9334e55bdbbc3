"""Refresh tokens are recorded without their text now (accounts/tokens.py); the records made before lose theirs.

Whoever read a record's text (a dump, a backup, a replica) could refresh with it for up to
JWT_REFRESH_DAYS: the blacklist needs only the token's id (jti). Not undone: the texts are gone.
"""

from django.db import migrations


def forget_texts(apps, schema_editor):
    OutstandingToken = apps.get_model("token_blacklist", "OutstandingToken")
    OutstandingToken.objects.exclude(token="").update(token="")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_refresh_token_user_key_sets_null_on_delete"),
        ("token_blacklist", "0013_alter_blacklistedtoken_options_and_more"),
    ]

    operations = [migrations.RunPython(forget_texts, migrations.RunPython.noop)]
