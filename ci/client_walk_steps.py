"""The README's walk, step by step, through the client that
openapi-python-client generated from /openapi.json (run by client_walk.py,
with the generated package `arkku_client` on PYTHONPATH).

Each step calls the generated operation, checks the status and the parsed
answer, and prints one line. The client raises on any status the document
does not list for the operation, so an undocumented answer fails the walk.
Staff tokens come from `arkku token` and the customer's from signing in with a
code, as in the README.
"""

import json
import os
import subprocess
import sys
import time
import zipfile
from io import BytesIO

from arkku_client import AuthenticatedClient, Client
from arkku_client.api.audit import list_audit_entries, verify_audit_chain
from arkku_client.api.compliance import erase_customer, export_customer
from arkku_client.api.consents import list_my_consents, record_consent, record_my_consent
from arkku_client.api.customers import add_contact, create_customer, read_customer, update_customer
from arkku_client.api.interactions import (
    list_interactions,
    list_overdue_interactions,
    record_interaction,
    resolve_interaction,
)
from arkku_client.api.lookup import lookup_customers
from arkku_client.api.me import erase_me, export_my_data, read_my_profile
from arkku_client.api.sign_in import start_customer_sign_in, verify_customer_sign_in
from arkku_client.models import (
    AcceptedContact,
    Bundle,
    ConfirmBody,
    ConsentBody,
    CreateCustomer,
    CreatedInteraction,
    CustomerToken,
    EntriesView,
    Evidence,
    InteractionsView,
    LedgerView,
    LookupBody,
    LookupView,
    NewContactBody,
    NewInteractionBody,
    OverdueList,
    PatchCustomer,
    Problem,
    ProfileView,
    Receipt,
    ResolveBody,
    SignInStarted,
    StartSignIn,
    Tombstone,
    VerifyReport,
    VerifySignIn,
)
from arkku_client.models.export_my_data_format import ExportMyDataFormat

URL = os.environ["WALK_URL"]
ARKKU = os.environ["WALK_ARKKU"]
DUE = "2026-01-05T09:00:00Z"  # a promise already broken, as in the README


class WalkFailed(Exception):
    pass


def token(*args):
    """`arkku token …`, the token alone on the last line of stdout."""
    r = subprocess.run([ARKKU, "token", *args], capture_output=True, text=True, check=True)
    return r.stdout.strip().splitlines()[-1]


def client(tok):
    return AuthenticatedClient(base_url=URL, token=tok, raise_on_unexpected_status=True)


def step(what, response, status, parsed_type=None):
    """Checks one answer: its status and the type the client parsed it into."""
    got = int(response.status_code)
    parsed = response.parsed
    if got != status:
        detail = parsed.code if isinstance(parsed, Problem) else response.content[:300]
        raise WalkFailed(f"{what}: expected {status}, got {got} ({detail!r})")
    if parsed_type is not None and not isinstance(parsed, parsed_type):
        raise WalkFailed(f"{what}: expected a {parsed_type.__name__}, got {type(parsed).__name__}")
    print(f"client: {what} -> {got}", flush=True)
    return parsed


def expect(what, condition):
    if not condition:
        raise WalkFailed(f"{what}: not as the README shows")


def last_code(timeout=5.0):
    """The code of the newest message in the outbox file (the walk's vault
    runs with ARKKU_NOTIFY=file), once the notifier has written one."""
    path = os.path.join(os.environ["ARKKU_DATA_DIR"], "outbox.jsonl")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            with open(path) as f:
                return json.loads(f.read().splitlines()[-1])["code"]
        time.sleep(0.1)
    raise WalkFailed("sign-in: no message in the outbox file")


def channels(items):
    return sorted(x.channel for x in items)


def walk():
    svc = client(token("--role", "service", "--sub", "crm-sync", "--purposes", "support"))
    agent = client(token("--role", "agent", "--sub", "alice", "--purposes", "support",
                         "--channel", "phone"))

    created = step("create_customer", create_customer.sync_detailed(client=svc, body=CreateCustomer(
        display_name="Pena Virtanen",
        preferred_channel="phone",
        contacts=[
            NewContactBody(channel="phone", value="040 123 4567", label="mobile"),
            NewContactBody(channel="email", value="pena@example.com"),
            NewContactBody(channel="instagram", value="@pena_v"),
        ],
    )), 201, ProfileView)
    cid = created.id
    phone = next(c for c in created.contacts if c.channel == "phone")
    expect("create_customer", phone.masked and phone.value == "+358*******67")

    found = step("lookup_customers", lookup_customers.sync_detailed(client=agent, body=LookupBody(
        channel="phone", value="+358 40 1234567", purpose="support")), 200, LookupView)
    expect("lookup_customers", [m.customer_id for m in found.matches] == [cid])

    profile = step("read_customer", read_customer.sync_detailed(
        cid, client=agent, purpose="support"), 200, ProfileView)
    expect("read_customer", channels(profile.contacts) == ["phone"])
    expect("read_customer withheld", channels(profile.withheld) == ["email", "instagram"])
    expect("read_customer reasons", {w.reason for w in profile.withheld} == {"consent_required"})

    revealed = step("read_customer reveal", read_customer.sync_detailed(
        cid, client=agent, purpose="support", reveal=True, reason="TICKET-42"), 200, ProfileView)
    expect("reveal", [c.value for c in revealed.contacts] == ["+358401234567"])

    accepted = step("add_contact", add_contact.sync_detailed(cid, client=svc, body=NewContactBody(
        channel="sms", value="0401234567")), 202, AcceptedContact)
    expect("add_contact", accepted.status == "accepted")
    step("update_customer", update_customer.sync_detailed(
        cid, client=svc, body=PatchCustomer(preferred_channel="sms")), 204)

    pending = step("record_consent", record_consent.sync_detailed(cid, client=agent, body=ConsentBody(
        purpose="cross_channel", channel="email", action="grant", method="spoken",
        evidence=Evidence(notice_id="privacy-notice", notice_version="3"),
    )), 201, Receipt)
    expect("record_consent", pending.status == "pending_confirmation")
    expect("record_consent review", pending.review == "agent_recorded")

    me = client(token("--role", "customer", "--sub", str(cid)))
    confirmed = step("record_my_consent confirm", record_my_consent.sync_detailed(
        client=me, body=ConfirmBody(action="confirm", consent_id=pending.consent_id)), 201, Receipt)
    expect("confirm", confirmed.status == "effective" and confirmed.confirms == pending.consent_id)
    opened = step("read_customer after consent", read_customer.sync_detailed(
        cid, client=agent, purpose="support"), 200, ProfileView)
    expect("consent opens e-mail", channels(opened.contacts) == ["email", "phone"])

    step("record_my_consent withdraw", record_my_consent.sync_detailed(client=me, body=ConsentBody(
        purpose="cross_channel", channel="email", action="withdraw", method="web_form",
    )), 201, Receipt)
    ledger = step("list_my_consents", list_my_consents.sync_detailed(client=me), 200, LedgerView)
    expect("withdrawn", [s.status for s in ledger.current] == ["withdrawn"])

    made = step("record_interaction", record_interaction.sync_detailed(
        cid, client=agent, body=NewInteractionBody(
            channel="phone", kind="contact_request", body="Call back about the invoice",
            due_at=DUE)), 201, CreatedInteraction)
    listed = step("list_interactions", list_interactions.sync_detailed(
        cid, client=agent, purpose="support"), 200, InteractionsView)
    expect("list_interactions", [i.body for i in listed.interactions] == ["Call back about the invoice"])
    overdue = step("list_overdue_interactions", list_overdue_interactions.sync_detailed(
        client=agent, purpose="support"), 200, OverdueList)
    expect("overdue", made.id in [o.id for o in overdue.overdue])
    step("resolve_interaction", resolve_interaction.sync_detailed(
        cid, made.id, client=agent, body=ResolveBody(resolved=True)), 204)

    # The customer signs in with a code, as in the README; from here on `me`
    # is the token the sign-in gave.
    anyone = Client(base_url=URL, raise_on_unexpected_status=True)
    started = step("start_customer_sign_in", start_customer_sign_in.sync_detailed(
        client=anyone, body=StartSignIn(channel="email", value="Pena@Example.com")), 202, SignInStarted)
    signed_in = step("verify_customer_sign_in", verify_customer_sign_in.sync_detailed(
        client=anyone, body=VerifySignIn(challenge_id=started.challenge_id, code=last_code())),
        200, CustomerToken)
    expect("a customer token", signed_in.token_type == "Bearer" and signed_in.expires_in == 900)
    me = client(signed_in.access_token)

    own = step("read_my_profile", read_my_profile.sync_detailed(client=me), 200, ProfileView)
    expect("unmasked", not any(c.masked for c in own.contacts))
    bundle = step("export_my_data", export_my_data.sync_detailed(client=me), 200, Bundle)
    expect("export format", bundle.format_ == "arkku-export/1")
    # The generator parses one content type per answer (JSON here), so the
    # ZIP answer is fetched with the generated request and read as bytes.
    kwargs = export_my_data._get_kwargs(format_=ExportMyDataFormat.ZIP)
    zipped = me.get_httpx_client().request(**kwargs)
    expect("export_my_data zip status", zipped.status_code == 200)
    expect("export_my_data zip", zipfile.is_zipfile(BytesIO(zipped.content)))
    print("client: export_my_data format=zip -> 200", flush=True)

    comp = client(token("--role", "compliance", "--sub", "auditor", "--purposes", "dsr"))
    staff = step("export_customer", export_customer.sync_detailed(
        cid, client=comp, purpose="dsr", reason="DSR-2026-14"), 200, Bundle)
    expect("export_customer", staff.customer.id == cid)

    gone = step("erase_me", erase_me.sync_detailed(client=me), 200, Tombstone)
    again = step("erase_customer", erase_customer.sync_detailed(
        cid, client=comp, reason="DSR-2026-14"), 200, Tombstone)
    expect("the same tombstone", (again.id, again.erased_at) == (gone.id, gone.erased_at))
    erased = step("read_customer after erasure", read_customer.sync_detailed(
        cid, client=agent, purpose="support"), 410, Problem)
    expect("customer_erased", erased.code == "customer_erased")

    entries = step("list_audit_entries", list_audit_entries.sync_detailed(
        client=comp, customer_id=cid, limit=50), 200, EntriesView)
    expect("audit trail", entries.entries and entries.entries[0].action == "customer.create")
    report = step("verify_audit_chain", verify_audit_chain.sync_detailed(client=comp), 200, VerifyReport)
    expect("chain intact", report.ok)


if __name__ == "__main__":
    try:
        walk()
    except WalkFailed as e:
        print(f"client: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    print("client: the README walk ran through the generated client", flush=True)
