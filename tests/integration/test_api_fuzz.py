"""Both HTTP APIs fuzzed from their OpenAPI documents with schemathesis, on the real stack.

A real ledger worker on the local Kafka and the real ``stockflow connectors serve`` (with
the fake shops) get requests generated from each operation of their ``/openapi.json``:
valid ones (positive) and ones breaking the document (negative). Every answer must be
below 500, conform to the document (status, content type, body), and a 4xx must carry a
JSON message (``error`` or ``errors``). Webhook bodies are signed with the channel's
secret on about half the cases, so the fuzz reaches the normalisers behind the signature.

``STOCKFLOW_FUZZ_EXAMPLES`` sets the examples per operation and mode (CI default: 25);
the test prints how many requests it sent.
"""

from __future__ import annotations

import copy
import json
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from connectors.framework.signing import sign
from deploy.local.credentials import operator_token
from streams.kernel.settings import Settings
from tests.fakes.e2e import Stack, e2e_stack
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("STOCKFLOW_FUZZ_EXAMPLES", "25"))

# The one place request headers come from: the local operator's bearer token (every scope),
# set when the stack is up.
HEADERS: dict[str, str] = {}

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,  # data breaking the document must be refused (4xx)
]
# What the connectors' configuration of the e2e stack expects (tests.fakes.e2e)
SIGNING = {
    "/webhooks/shopify": (
        "X-Shopify-Hmac-Sha256",
        "shopify-secret",
        {"X-Shopify-Shop-Domain": "demo.myshopify.com"},
    ),
    "/webhooks/woocommerce": (
        "X-WC-Webhook-Signature",
        "woo-secret",
        {"X-WC-Webhook-Source": "https://shop.example/"},
    ),
}


@pytest.fixture(scope="module")
def stack(local_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("fuzz")
    HEADERS["Authorization"] = f"Bearer {operator_token(local_stack)}"
    with e2e_stack(
        local_stack, folder, worker_port=free_port(), connectors_port=free_port(), n_skus=2
    ) as stack:
        yield stack


def message_problem(response: requests.Response) -> str | None:
    """Why a 4xx answer lacks a JSON message, or None when it has one."""
    if not 400 <= response.status_code < 500:
        return None
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} is not JSON: {response.text[:200]!r}"
    if not isinstance(body, dict):
        return f"{response.status_code} body is not an object: {body!r:.200}"
    error, errors = body.get("error"), body.get("errors")
    if (isinstance(error, str) and error) or (isinstance(errors, list) and errors):
        return None
    return f"{response.status_code} has no error/errors message: {body!r:.200}"


class SigningSession(requests.Session):
    """Signs the bytes of a webhook request as its channel would, when ``signing`` is on:
    the signature covers exactly what is sent, so the fuzz passes the receiver's check."""

    signing = False

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        prepared = super().prepare_request(request)
        path = urlsplit(prepared.url or "").path
        if self.signing and path in SIGNING:
            header, secret, fixed = SIGNING[path]
            body = prepared.body or b""
            raw = body.encode() if isinstance(body, str) else body
            prepared.headers.update({**fixed, header: sign(secret, raw)})
        return prepared


def fuzz(base_url: str, session: SigningSession) -> Counter[str]:
    """Fuzz every operation of the document ``base_url`` serves; returns requests sent
    per operation and mode. A failing case raises (shrunk by hypothesis)."""
    document = session.get(base_url + "/openapi.json", headers=HEADERS, timeout=30).json()
    schema = schemathesis.openapi.from_dict(document)
    # the token comes from HEADERS, not from the generator
    schema.config.generation.update(with_security_parameters=False)
    # a body over the size limit is refused with 413, a refusal as good as a 400
    refusal = schema.config.checks.negative_data_rejection
    statuses = [*refusal.expected_statuses, "413"]
    schema.config.checks.negative_data_rejection = type(refusal)(expected_statuses=statuses)
    sent: Counter[str] = Counter()
    for result in schema.get_all_operations():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz_operation(result.ok(), mode, base_url, session, sent)
    return sent


def _fuzz_operation(
    operation: Any,
    mode: GenerationMode,
    base_url: str,
    session: SigningSession,
    sent: Counter[str],
) -> None:
    label = f"{operation.label} [{mode.value}]"

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), sign_it=st.booleans())
    def run(case: Any, sign_it: bool) -> None:
        session.signing = sign_it
        response = case.call(base_url, session, HEADERS, timeout=30)
        sent[label] += 1
        case.validate_response(response, checks=CHECKS, headers=HEADERS)
        problem = message_problem(response)
        assert problem is None, f"{case.method} {case.formatted_path}: {problem}"

    try:
        run()
    except Unsatisfiable:  # an operation without any input has nothing to break
        if mode is not GenerationMode.NEGATIVE or sent[label]:
            raise
        sent[label] += 0


def _report(name: str, sent: Counter[str]) -> None:
    print(f"\n[fuzz] {name}: {sum(sent.values())} requests ({EXAMPLES} examples per mode)")
    for label, count in sorted(sent.items()):
        print(f"[fuzz]   {count:5d}  {label}")


def test_the_worker_api_answers_every_fuzzed_request_below_500_with_a_message(
    stack: Stack,
) -> None:
    """Given a real worker on the local stack, when every operation of its /openapi.json
    is fuzzed with valid and invalid requests, then no answer is a 5xx, each conforms to
    the document, every 4xx carries a JSON message, and the worker still serves."""
    with SigningSession() as session:
        sent = fuzz(stack.worker.url, session)
    _report("worker", sent)
    assert sum(sent.values()) >= EXAMPLES
    assert stack.worker.get("/health")[0] == 200


def test_the_connectors_api_answers_every_fuzzed_request_below_500_with_a_message(
    stack: Stack,
) -> None:
    """Given the connectors serving both fake shops, when every operation of their
    /openapi.json is fuzzed (webhooks signed or not), then no answer is a 5xx, each
    conforms to the document, every 4xx carries a JSON message, and they still serve
    and still take a real order."""
    with SigningSession() as session:
        sent = fuzz(stack.connectors.url, session)
        health = session.get(stack.connectors.url + "/health", timeout=10)
    _report("connectors", sent)
    assert sum(sent.values()) >= EXAMPLES
    assert health.status_code == 200
    order = stack.fakes.call(
        lambda: stack.fakes.shopify.place_order([(stack.variant(stack.skus[0]), 1)])
    )
    delivered = stack.fakes.run(stack.fakes.shopify.deliver("orders/create", order))
    assert delivered.statuses == [200]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _replace(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = dict(node) if isinstance(node, dict) else list(node)
    copy[path[0]] = _replace(node[path[0]], path[1:], value)
    return copy


def test_signed_orders_with_any_field_broken_are_refused_with_a_message_never_a_5xx(
    stack: Stack,
) -> None:
    """Given real orders of both fake shops, when each is sent signed, as its channel
    would, with 1 to 3 of its fields (at any depth) replaced by other JSON values, then
    every answer is 200 or a 4xx with a JSON message, never a 5xx, and the connectors
    still serve."""
    fakes, sku = stack.fakes, stack.skus[0]
    orders = {
        "/webhooks/shopify": (
            fakes.call(lambda: copy.deepcopy(fakes.shopify.place_order([(stack.variant(sku), 1)]))),
            {"X-Shopify-Topic": "orders/create"},
        ),
        "/webhooks/woocommerce": (
            fakes.call(lambda: copy.deepcopy(fakes.woo.place_order([(stack.pid(sku), 1)]))),
            {"X-WC-Webhook-Topic": "order.created"},
        ),
    }
    statuses: Counter[int] = Counter()
    with SigningSession() as session:
        session.signing = True

        @settings(
            max_examples=4 * EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(data=st.data(), route=st.sampled_from(sorted(orders)))
        def send_broken(data: st.DataObject, route: str) -> None:
            order, headers = orders[route]
            broken = order
            for _ in range(data.draw(st.integers(1, 3))):
                path = data.draw(st.sampled_from(_paths(broken)))
                broken = _replace(broken, path, data.draw(JSON_VALUES))
            response = session.post(
                stack.connectors.url + route,
                data=json.dumps(broken).encode(),
                headers={**HEADERS, **headers, "Content-Type": "application/json"},
                timeout=30,
            )
            statuses[response.status_code] += 1
            assert response.status_code < 500, (route, broken, response.text)
            problem = message_problem(response)
            assert problem is None, (route, broken, problem)

        send_broken()
    print(f"\n[fuzz] signed broken orders: {sum(statuses.values())} requests, {dict(statuses)}")
    assert session.get(stack.connectors.url + "/health", timeout=10).status_code == 200
