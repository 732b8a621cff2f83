import pytest
from django.test import Client
from django.urls import path
from ninja import NinjaAPI

from chatbot.users.auth import ApiKeyAuth, api_auth

api = NinjaAPI(urls_namespace="users-tests-auth")


@api.get("/whoami", auth=api_auth)
def whoami(request):
    return {"auth": request.auth.username, "user": request.user.username}


@api.get("/whoami-async", auth=api_auth)
async def whoami_async(request):
    return {"auth": request.auth.username}


@api.post("/notes", auth=api_auth)
def note_create(request):
    return {"by": request.auth.username}


urlpatterns = [path("api/", api.urls)]
pytestmark = pytest.mark.urls(__name__)


def bearer(raw_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw_key}"}


def test_authenticate_returns_the_keys_user(rf, user, issued_key):
    assert ApiKeyAuth().authenticate(rf.get("/"), issued_key[1]) == user


def test_authenticate_refuses_a_wrong_key(rf, issued_key):
    assert ApiKeyAuth().authenticate(rf.get("/"), issued_key[1][:-2]) is None


def test_a_bearer_key_authenticates_a_route_as_auth_and_as_request_user(client, issued_key):
    response = client.get("/api/whoami", headers=bearer(issued_key[1]))
    assert response.status_code == 200
    assert response.json() == {"auth": "ada", "user": "ada"}


def test_a_bearer_key_authenticates_an_async_route(client, issued_key):
    response = client.get("/api/whoami-async", headers=bearer(issued_key[1]))
    assert response.status_code == 200
    assert response.json() == {"auth": "ada"}


def test_a_wrong_bearer_key_is_unauthorized(client, issued_key):
    response = client.get("/api/whoami", headers=bearer("cb_not-a-key"))
    assert response.status_code == 401


@pytest.mark.django_db
def test_no_credentials_is_unauthorized(client):
    assert client.get("/api/whoami").status_code == 401


def test_a_browser_session_still_authenticates(client, user):
    client.force_login(user)
    response = client.get("/api/whoami")
    assert response.status_code == 200
    assert response.json()["auth"] == "ada"


def test_a_bearer_key_needs_no_csrf_token(issued_key):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/api/notes", headers=bearer(issued_key[1]))
    assert response.status_code == 200
    assert response.json() == {"by": "ada"}


def test_a_session_post_without_csrf_token_is_refused(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post("/api/notes").status_code == 403
