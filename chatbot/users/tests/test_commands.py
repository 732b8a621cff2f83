import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from chatbot.users.models import ApiKey
from chatbot.users.selectors import api_key_authenticate

RAW_KEY = re.compile(r"cb_[\w-]{43}")


def test_create_api_key_prints_a_key_that_works(user):
    out = StringIO()
    call_command("create_api_key", "ada", "--name", "CI bot", stdout=out)
    raw_key = RAW_KEY.search(out.getvalue())
    assert raw_key is not None, out.getvalue()
    assert api_key_authenticate(raw_key=raw_key.group()) == user
    assert ApiKey.objects.get(user=user).name == "CI bot"


def test_create_api_key_names_the_key_by_default(user):
    call_command("create_api_key", "ada", stdout=StringIO())
    assert ApiKey.objects.get(user=user).name == "command line"


@pytest.mark.django_db
def test_create_api_key_refuses_an_unknown_user():
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        call_command("create_api_key", "nobody", stdout=StringIO())
    assert not ApiKey.objects.exists()
