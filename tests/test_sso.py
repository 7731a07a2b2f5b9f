"""Single sign-on (issue 16, part 2): OpenID Connect against a local identity provider
(oidc-provider-mock), in the browser and through the test client; SAML through its
metadata and signed, unsigned and tampered responses.  Groups map to teams and roles
by GroupMapping rows, synced at each sign-in (README "Single sign-on")."""

import base64
import datetime
import json
import os
import re
import subprocess
import sys
import uuid
import warnings
import zlib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from allauth.socialaccount.models import SocialAccount, SocialApp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sites.models import Site
from lxml import etree
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from playwright.sync_api import expect

from apps.accounts.models import GroupMapping, Membership
from apps.audit.models import AuditEntry

from .factories import MembershipFactory, TeamFactory, UserFactory

with warnings.catch_warnings():  # authlib's own deprecations, at the mock provider's import
    warnings.simplefilter("ignore")
    from oidc_provider_mock import run_server_in_thread

ROOT = Path(__file__).resolve().parent.parent

User = get_user_model()
# The mock provider's authlib warns of its own deprecated calls.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:authlib.*")


# --- OpenID Connect -------------------------------------------------------------------


@pytest.fixture
def idp(monkeypatch):
    """A local OpenID provider on a free port; it accepts any client and redirect URI."""
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # plain http on localhost
    with run_server_in_thread() as server:
        yield f"http://localhost:{server.server_port}"


def set_idp_user(idp: str, sub: str, **claims):
    """Tell the provider what it says about `sub` the next time it signs them in."""
    httpx.put(f"{idp}/users/{sub}", json=claims).raise_for_status()


def oidc_app(idp: str, **settings) -> SocialApp:
    app = SocialApp.objects.create(
        provider="openid_connect", provider_id="mock", name="Mock IdP", client_id="portal", secret="s3cret",
        settings={"server_url": idp, **settings},
    )
    app.sites.add(Site.objects.get_current())
    return app


def oidc_sign_in(client, sub: str, provider_id: str = "mock"):
    """The whole authorization-code flow, the provider's consent form posted by httpx."""
    started = client.post(f"/accounts/oidc/{provider_id}/login/")
    assert started.status_code == 302, started.content
    authorized = httpx.post(started["Location"], data={"sub": sub})
    assert authorized.status_code == 302, authorized.text
    callback = urlsplit(authorized.headers["location"])
    assert callback.path == f"/accounts/oidc/{provider_id}/login/callback/"
    return client.get(f"{callback.path}?{callback.query}")


def signed_in_user(client):
    pk = client.session.get(SESSION_KEY)
    return User.objects.get(pk=pk) if pk else None


def roles_of(user) -> dict[str, str]:
    return dict(Membership.objects.filter(user=user).values_list("team__slug", "role"))


@pytest.fixture
def teams(db):
    ops, dba, payments = TeamFactory(slug="ops"), TeamFactory(slug="dba"), TeamFactory(slug="payments")
    GroupMapping.objects.create(provider="mock", group="sre", team=ops, role=Membership.Role.RESPONDER)
    GroupMapping.objects.create(provider="mock", group="sre-leads", team=ops, role=Membership.Role.ADMIN)
    GroupMapping.objects.create(provider="mock", group="dba", team=dba, role=Membership.Role.RESPONDER)
    return {"ops": ops, "dba": dba, "payments": payments}


@pytest.fixture
def orm_beside_playwright(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # see tests/test_browser.py


@pytest.mark.browser
def test_oidc_sign_in_in_the_browser_creates_the_user_with_the_role_their_groups_map_to(
    asgi_server, page, idp, orm_beside_playwright
):
    ops = TeamFactory(name="Ops", slug="ops")
    GroupMapping.objects.create(provider="mock", group="sre", team=ops, role=Membership.Role.RESPONDER)
    oidc_app(idp)
    set_idp_user(idp, "alice", email="alice@example.com", email_verified=True, preferred_username="alice",
                 name="Alice Liddell", groups=["sre", "everyone"])

    page.goto(asgi_server + "/accounts/login/")
    page.get_by_role("button", name="Sign in with Mock IdP").click()
    # The provider's consent page: who signs in, by subject.
    expect(page).to_have_url(re.compile(r"^http://localhost:\d+/oauth2/authorize"))
    page.get_by_placeholder("sub").fill("alice")
    page.get_by_role("button", name="Authorize").click()

    expect(page).to_have_url(asgi_server + "/incidents/")
    expect(page.locator(".topbar .user")).to_have_text("alice")
    alice = User.objects.get(username="alice")
    assert (alice.email, alice.first_name, alice.last_name) == ("alice@example.com", "Alice", "Liddell")
    assert not alice.has_usable_password()
    assert roles_of(alice) == {"ops": "responder"}
    assert SocialAccount.objects.get(user=alice).provider == "mock"


def test_memberships_follow_the_groups_at_every_sign_in_for_mapped_teams_only(client, idp, teams):
    oidc_app(idp)
    set_idp_user(idp, "carol", email="carol@example.com", email_verified=True, preferred_username="carol",
                 groups=["sre"])
    assert oidc_sign_in(client, "carol").status_code == 302
    carol = signed_in_user(client)
    assert carol.username == "carol"
    assert roles_of(carol) == {"ops": "responder"}
    # An admin adds her to a team no mapping of this provider names: the provider leaves it alone.
    MembershipFactory(user=carol, team=teams["payments"], role=Membership.Role.VIEWER)

    client.logout()
    set_idp_user(idp, "carol", email="carol@example.com", email_verified=True, groups=["sre", "sre-leads", "dba"])
    oidc_sign_in(client, "carol")
    assert signed_in_user(client) == carol
    assert roles_of(carol) == {"ops": "admin", "dba": "responder", "payments": "viewer"}  # the strongest role wins

    client.logout()
    set_idp_user(idp, "carol", email="carol@example.com", email_verified=True, groups=["dba"])
    oidc_sign_in(client, "carol")
    assert roles_of(carol) == {"dba": "responder", "payments": "viewer"}  # out of Ops

    client.logout()
    set_idp_user(idp, "carol", email="carol@example.com", email_verified=True, groups=[])
    oidc_sign_in(client, "carol")
    assert signed_in_user(client) == carol  # a known user still signs in, with no mapped team
    assert roles_of(carol) == {"payments": "viewer"}

    synced = AuditEntry.objects.filter(verb="membership.synced", data__username="carol").order_by("id")
    assert [e.actor_label for e in synced] == ["single sign-on (mock)"] * 4
    assert synced[1].data["changed"] == {str(teams["ops"].pk): ["responder", "admin"]}
    assert synced[3].data["removed"] == [teams["dba"].pk]


def test_a_new_user_whose_groups_map_to_no_team_is_refused(client, idp, teams):
    oidc_app(idp)
    set_idp_user(idp, "mallory", email="mallory@example.com", email_verified=True, groups=["marketing"])
    response = oidc_sign_in(client, "mallory")
    assert response.status_code == 403
    assert b"none of your groups" in response.content
    assert signed_in_user(client) is None
    assert not User.objects.filter(email="mallory@example.com").exists()


def test_a_wildcard_mapping_admits_everyone_of_the_provider(client, idp, teams):
    GroupMapping.objects.create(provider="mock", group="*", team=teams["payments"], role=Membership.Role.VIEWER)
    oidc_app(idp)
    set_idp_user(idp, "dave", email="dave@example.com", email_verified=True, preferred_username="dave")
    oidc_sign_in(client, "dave")
    assert roles_of(signed_in_user(client)) == {"payments": "viewer"}


def test_a_local_user_is_linked_by_an_email_the_provider_verified(client, idp, teams):
    bob = UserFactory(username="bob", email="bob@example.com")
    oidc_app(idp)
    set_idp_user(idp, "bob-at-idp", email="bob@example.com", email_verified=True, groups=["sre"])
    oidc_sign_in(client, "bob-at-idp")
    assert signed_in_user(client) == bob
    assert SocialAccount.objects.get(uid="bob-at-idp").user == bob
    assert roles_of(bob) == {"ops": "responder"}
    bob.refresh_from_db()  # his address was never verified here: allauth's guard drops the password
    assert not bob.has_usable_password()


def test_an_unverified_email_never_signs_in_the_local_user_who_has_it(client, idp, teams):
    bob = UserFactory(username="bob", email="bob@example.com")
    oidc_app(idp)
    set_idp_user(idp, "eve", email="bob@example.com", email_verified=False, groups=["sre"])
    oidc_sign_in(client, "eve")
    assert signed_in_user(client) != bob
    assert not SocialAccount.objects.filter(user=bob).exists()
    assert bob.check_password("correct horse battery staple")


def test_a_provider_from_settings_and_a_groups_claim_of_its_own(client, idp, teams, settings):
    """OIDC_* variables build the provider in settings (no SocialApp row); Azure AD's app
    roles come in a "roles" claim."""
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"OAUTH_PKCE_ENABLED": True, "APPS": [{
        "provider_id": "mock", "name": "Company SSO", "client_id": "portal", "secret": "s3cret",
        "settings": {"server_url": idp, "groups_claim": "roles"},
    }]}}
    set_idp_user(idp, "frank", email="frank@example.com", email_verified=True, roles=["dba"], groups=["sre"])
    assert b"Sign in with Company SSO" in client.get("/accounts/login/").content
    oidc_sign_in(client, "frank")
    assert roles_of(signed_in_user(client)) == {"dba": "responder"}


def providers_with(**env) -> dict:
    code = "from django.conf import settings; import json; print(json.dumps(settings.SOCIALACCOUNT_PROVIDERS))"
    unset = ("OIDC_", "GITHUB_", "GOOGLE_", "SAML_")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(unset)}
    out = subprocess.run(
        [sys.executable, "-c", code], env={**clean, "DJANGO_SETTINGS_MODULE": "incident_manager.settings", **env},
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    return json.loads(out)


def test_providers_come_from_the_environment_and_none_by_default():
    assert providers_with() == {"openid_connect": {"OAUTH_PKCE_ENABLED": True}}  # no app: no button
    providers = providers_with(
        OIDC_SERVER_URL="https://sso.example.com/realms/ops", OIDC_CLIENT_ID="portal", OIDC_CLIENT_SECRET="s",
        OIDC_SCOPES="openid,profile,email,groups", GITHUB_CLIENT_ID="gh", GITHUB_CLIENT_SECRET="ghs",
        SAML_IDP_METADATA_URL="https://idp.example.com/metadata", SAML_IDP_ENTITY_ID="https://idp.example.com/",
    )
    assert sorted(providers) == ["github", "openid_connect", "saml"]
    (oidc,) = providers["openid_connect"]["APPS"]
    assert (oidc["provider_id"], oidc["client_id"]) == ("oidc", "portal")
    assert oidc["settings"]["scope"] == ["openid", "profile", "email", "groups"]
    assert providers["github"]["APP"] == {"client_id": "gh", "secret": "ghs"}
    (saml,) = providers["saml"]["APPS"]
    assert saml["client_id"] == "saml" and saml["settings"]["advanced"]["want_assertion_signed"] is True


def test_the_login_page_has_no_provider_buttons_when_none_is_configured(client, db):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b"Sign in with" not in response.content


# --- SAML ------------------------------------------------------------------------------

IDP_ENTITY = "https://idp.example.test/metadata"
SLUG = "acme"
ACS = f"http://testserver/accounts/saml/{SLUG}/acs/"
SP_ENTITY = f"http://testserver/accounts/saml/{SLUG}/metadata/"


def key_and_certificate() -> tuple[str, str]:
    """A throwaway RSA key and a self-signed certificate for it, both PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test idp")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def idp_keys():
    return key_and_certificate()


@pytest.fixture
def saml_app(db, idp_keys, client):
    client.defaults["HTTP_HOST"] = "testserver"  # python3-saml reads the Host header, as browsers send
    app = SocialApp.objects.create(
        provider="saml", provider_id="acme-saml", name="Acme SAML", client_id=SLUG,
        settings={
            "idp": {"entity_id": IDP_ENTITY, "sso_url": "https://idp.example.test/sso", "x509cert": idp_keys[1]},
            "attribute_mapping": {"uid": "uid", "email": "email", "username": "username", "first_name": "givenName"},
            "verified_email": True,  # this IdP vouches for its directory's addresses
            "advanced": {"want_assertion_signed": True, "allow_single_label_domains": True},  # "testserver"
        },
    )
    app.sites.add(Site.objects.get_current())
    ops = TeamFactory(slug="ops")
    GroupMapping.objects.create(provider="acme-saml", group="oncall", team=ops, role=Membership.Role.RESPONDER)
    GroupMapping.objects.create(provider="acme-saml", group="oncall-admins", team=ops, role=Membership.Role.ADMIN)
    return app


def saml_request_id(client) -> str:
    """Start an SP-initiated sign-in; the ID of the AuthnRequest sent to the IdP."""
    started = client.post(f"/accounts/saml/{SLUG}/login/")
    assert started.status_code == 302, started.content
    location = urlsplit(started["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "https://idp.example.test/sso"
    request = zlib.decompress(base64.b64decode(parse_qs(location.query)["SAMLRequest"][0]), -15)
    return etree.fromstring(request).get("ID")


def saml_response(in_response_to: str, groups: list[str], key_pem: str | None, cert_pem: str | None) -> str:
    """What the IdP posts back: a Response whose Assertion is signed when a key is given."""
    now = datetime.datetime.now(datetime.UTC)
    instant = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    later = (now + datetime.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    earlier = (now - datetime.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def attribute(name, *values):
        return f'<saml:Attribute Name="{name}">' + "".join(
            f'<saml:AttributeValue xsi:type="xs:string">{v}</saml:AttributeValue>' for v in values
        ) + "</saml:Attribute>"

    assertion = f"""<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"
        xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
        ID="_{uuid.uuid4().hex}" Version="2.0" IssueInstant="{instant}">
      <saml:Issuer>{IDP_ENTITY}</saml:Issuer>
      <saml:Subject>
        <saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">grace@example.com</saml:NameID>
        <saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">
          <saml:SubjectConfirmationData NotOnOrAfter="{later}" Recipient="{ACS}" InResponseTo="{in_response_to}"/>
        </saml:SubjectConfirmation>
      </saml:Subject>
      <saml:Conditions NotBefore="{earlier}" NotOnOrAfter="{later}">
        <saml:AudienceRestriction><saml:Audience>{SP_ENTITY}</saml:Audience></saml:AudienceRestriction>
      </saml:Conditions>
      <saml:AuthnStatement AuthnInstant="{instant}" SessionIndex="_session">
        <saml:AuthnContext>
          <saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Password</saml:AuthnContextClassRef>
        </saml:AuthnContext>
      </saml:AuthnStatement>
      <saml:AttributeStatement>
        {attribute("uid", "grace")}{attribute("email", "grace@example.com")}{attribute("username", "grace")}
        {attribute("givenName", "Grace")}{attribute("memberOf", *groups)}
      </saml:AttributeStatement>
    </saml:Assertion>"""
    if key_pem:
        assertion = OneLogin_Saml2_Utils.add_sign(assertion, key_pem, cert_pem)
        assertion = assertion.decode() if isinstance(assertion, bytes) else assertion
        assertion = re.sub(r"^<\?xml[^>]*\?>", "", assertion)
    return f"""<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"
        xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_{uuid.uuid4().hex}" Version="2.0"
        IssueInstant="{instant}" Destination="{ACS}" InResponseTo="{in_response_to}">
      <saml:Issuer>{IDP_ENTITY}</saml:Issuer>
      <samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>
      {assertion}
    </samlp:Response>"""


def post_saml_response(client, xml: str):
    acs = client.post(f"/accounts/saml/{SLUG}/acs/", {"SAMLResponse": base64.b64encode(xml.encode()).decode()})
    assert acs.status_code == 302 and acs["Location"].endswith(f"/accounts/saml/{SLUG}/acs/finish/"), acs
    return client.get(acs["Location"])


def test_saml_metadata_names_the_assertion_consumer_service(client, saml_app):
    response = client.get(f"/accounts/saml/{SLUG}/metadata/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    md = {"md": "urn:oasis:names:tc:SAML:2.0:metadata"}
    root = etree.fromstring(response.content)
    assert root.tag == "{urn:oasis:names:tc:SAML:2.0:metadata}EntityDescriptor"
    assert root.get("entityID") == SP_ENTITY
    acs = root.find("md:SPSSODescriptor/md:AssertionConsumerService", md)
    assert acs.get("Location") == ACS
    assert acs.get("Binding") == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"


def test_a_saml_response_signed_by_the_idp_signs_in_with_the_mapped_role(client, saml_app, idp_keys):
    request_id = saml_request_id(client)
    response = post_saml_response(client, saml_response(request_id, ["oncall", "staff"], *idp_keys))
    assert response.status_code == 302, response.content
    grace = signed_in_user(client)
    assert (grace.username, grace.email, grace.first_name) == ("grace", "grace@example.com", "Grace")
    assert roles_of(grace) == {"ops": "responder"}

    client.logout()  # the next sign-in's groups give more
    response = post_saml_response(client, saml_response(saml_request_id(client), ["oncall-admins"], *idp_keys))
    assert signed_in_user(client) == grace
    assert roles_of(grace) == {"ops": "admin"}


def refused(response) -> bool:
    return response.status_code == 401 and b"Third-Party Login Failure" in response.content


def test_an_unsigned_saml_response_is_refused(client, saml_app, caplog):
    response = post_saml_response(client, saml_response(saml_request_id(client), ["oncall"], None, None))
    assert refused(response), response.content
    assert "is not signed" in caplog.text
    assert signed_in_user(client) is None
    assert not User.objects.filter(username="grace").exists()


def test_an_unsigned_saml_response_is_refused_even_by_an_app_that_asks_no_signed_assertion(client, saml_app, caplog):
    """allauth's default for a SAML app (want_assertion_signed off): python3-saml still
    wants the Response or its Assertion signed."""
    del saml_app.settings["advanced"]["want_assertion_signed"]
    saml_app.save()
    response = post_saml_response(client, saml_response(saml_request_id(client), ["oncall"], None, None))
    assert refused(response), response.content
    assert "No Signature found" in caplog.text
    assert signed_in_user(client) is None


def test_a_tampered_saml_response_is_refused(client, saml_app, idp_keys, caplog):
    signed = saml_response(saml_request_id(client), ["staff"], *idp_keys)
    tampered = signed.replace(">staff<", ">oncall-admins<")
    assert tampered != signed
    response = post_saml_response(client, tampered)
    assert refused(response), response.content
    assert "Signature validation failed" in caplog.text
    assert signed_in_user(client) is None


def test_a_saml_response_signed_by_another_key_is_refused(client, saml_app, caplog):
    response = post_saml_response(client, saml_response(saml_request_id(client), ["oncall"], *key_and_certificate()))
    assert refused(response), response.content
    assert "Signature validation failed" in caplog.text
    assert signed_in_user(client) is None
