"""The client core without I/O: the RPC table, the session rules, a plan driven by hand."""

from __future__ import annotations

from typing import Any

import pytest

from clients import _core as core
from clients.errors import ClientUsageError
from siogw_api.v1 import auth_pb2

from .test_verify import EcSigner, answer, self_signed

RPCS = [v for v in vars(core).values() if isinstance(v, core.Rpc)]


class FakeChannel:
    """Records the method path each stub binds; performs nothing."""

    def unary_unary(self, path: str, *args: Any, **kwargs: Any) -> Any:
        def method(request: Any, **call: Any) -> Any:
            raise AssertionError(f"no I/O in these tests ({path})")

        method.path = path  # type: ignore[attr-defined]
        return method

    unary_stream = unary_unary


def make_core(session_token: str | None = None) -> tuple[core.ClientCore, EcSigner]:
    gateway = EcSigner()
    gateway._cert = self_signed(gateway)
    client = core.ClientCore()
    client._attach(
        FakeChannel,
        gateway_certificate=gateway.certificate,
        target="test",
        timeout=1.0,
        session_token=session_token,
        user_id="analyst" if session_token else None,
    )
    return client, gateway


def test_every_rpc_binds_its_service_method() -> None:
    # Issue 15: every RPC of every service has its Rpc (and so a library method).
    from google.protobuf import descriptor_pool

    from clients import _lists
    from siogw_api.v1 import (  # noqa: F401 - registers the services' descriptors
        admin_pb2,
        audit_pb2,
        auth_pb2,
        query_pb2,
        reporting_pb2,
        screening_pb2,
    )

    rpcs = RPCS + [v for v in vars(_lists).values() if isinstance(v, core.Rpc)]
    pool = descriptor_pool.Default()
    for service in core.Service:
        declared = {m.name for m in pool.FindServiceByName(service.value).methods}
        assert {r.method for r in rpcs if r.service is service} == declared, service
    client, _ = make_core("token")
    for rpc in RPCS:
        method, _metadata = client._bind(core.Call(rpc, None))  # type: ignore[arg-type]
        assert method.path == f"/{rpc.service.value}/{rpc.method}"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("session", "without", "with_token"),
    [
        (core.Session.REQUIRED, ClientUsageError, True),
        (core.Session.NONE, False, False),
        (core.Session.IF_ANY, False, True),
    ],
)
def test_session_rules(session: core.Session, without: Any, with_token: bool) -> None:
    rpc = next(r for r in RPCS if r.session is session)
    call = core.Call(rpc, None)  # type: ignore[arg-type]
    anonymous, _ = make_core()
    if without is ClientUsageError:
        with pytest.raises(ClientUsageError, match="not logged in"):
            anonymous._bind(call)
    else:
        assert anonymous._bind(call)[1] == []
    logged_in, _ = make_core("tok")
    assert bool(logged_in._bind(call)[1]) is with_token


def test_query_plan_signs_then_calls_then_verifies() -> None:
    client, gateway = make_core("tok")
    user = EcSigner()
    plan = core.query(client, 11, {"iin": "900101300017"}, "basis", "T-1", "why", user)
    step = next(plan)
    assert isinstance(step, core.TokenWork)
    prepared = step.run()
    step = plan.send(prepared)
    assert isinstance(step, core.Call) and step.rpc is core.QUERY
    assert step.request == prepared.request()
    with pytest.raises(StopIteration) as done:
        plan.send(step.reply(answer(prepared, gateway)))
    outcome = done.value.value
    assert outcome.request_id == prepared.request_id and outcome.truncated


def test_login_plan_keeps_the_session() -> None:
    client, _ = make_core()
    user = EcSigner()
    user._cert = self_signed(user)
    plan = core.login(
        client, "analyst", user, None, factor="sms",
        sms_code_provider=lambda dest: "123456", device_key=None, biometric_sample=None,
    )
    step = next(plan)
    assert isinstance(step, core.Call) and step.rpc is core.BEGIN_LOGIN
    assert step.request.user_id == "analyst"
    step = plan.send(auth_pb2.BeginLoginResponse(login_id="L1", challenge=b"c"))
    assert isinstance(step, core.TokenWork)
    step = plan.send(step.run())
    assert isinstance(step, core.Call) and step.rpc is core.PROVE_LOGIN
    step = plan.send(auth_pb2.ProveLoginResponse(sms_destination="+7701***4567"))
    assert isinstance(step, core.AskCaller)
    step = plan.send(step.ask())
    assert isinstance(step, core.Call) and step.rpc is core.COMPLETE_LOGIN
    assert step.request.sms_code == "123456"
    with pytest.raises(StopIteration) as done:
        plan.send(auth_pb2.CompleteLoginResponse(session_token="S", expires_at="E"))
    assert done.value.value.session_token == "S"
    assert (client.session_token, client.user_id, client.signer) == ("S", "analyst", user)


def test_bad_arguments_fail_before_any_step() -> None:
    client, _ = make_core()
    plan = core.login(
        client, "analyst", EcSigner(), None, factor="sms",
        sms_code_provider=None, device_key=None, biometric_sample=None,
    )
    with pytest.raises(ClientUsageError, match="sms_code_provider"):
        next(plan)


def _chunk(data: bytes = b"", rows: int = 0, *, last: bool = False, total: int = 0) -> Any:
    from siogw_api.v1 import audit_pb2

    return audit_pb2.CsvChunk(data=data, rows=rows, last=last, total_rows=total)


def test_export_plan_streams_into_the_file_and_needs_the_last_chunk() -> None:
    import io

    from clients.errors import ResultVerificationError

    client, _gw = make_core("tok")
    out = io.BytesIO()
    plan = core.export_queries_csv(client, out, None, chunk_rows=0)
    step = next(plan)
    assert isinstance(step, core.Stream) and step.rpc is core.STREAM_QUERIES_CSV
    for msg in (_chunk(b"seq,time\r\n0,t\r\n", 1), _chunk(b"1,t\r\n", 1),
                _chunk(last=True, total=2)):
        step.give(msg)
    with pytest.raises(StopIteration) as done:
        plan.send(None)
    assert (done.value.value.rows, done.value.value.complete) == (2, True)
    assert out.getvalue() == b"seq,time\r\n0,t\r\n1,t\r\n"

    # A stream that ends without its last chunk, or miscounts, is an error.
    for chunks in ([_chunk(b"seq\r\n", 0)], [_chunk(b"a\r\n", 1), _chunk(last=True, total=5)]):
        plan = core.export_queries_csv(client, io.BytesIO(), None, chunk_rows=0)
        step = next(plan)
        with pytest.raises(ResultVerificationError):
            for msg in chunks:
                step.give(msg)
            plan.send(None)



def test_csv_sink_is_complete_only_with_a_consistent_last_chunk() -> None:
    """Any sequence of chunks from the gateway: the sink either completes with exactly
    the bytes and rows sent up to a last chunk whose total matches, or raises."""
    import io

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from clients._reports import CsvSink
    from clients.errors import ResultVerificationError

    chunk = st.tuples(st.binary(max_size=20), st.integers(0, 5), st.booleans(),
                      st.integers(0, 40))

    @settings(max_examples=300, deadline=None)
    @given(st.lists(chunk, max_size=8))
    def check(chunks: list[tuple[bytes, int, bool, int]]) -> None:
        out = io.BytesIO()
        sink = CsvSink(out)
        try:
            for data, rows, last, total in chunks:
                sink(_chunk(data, rows, last=last, total=total))
            info = sink.result()
        except ResultVerificationError:
            return
        lasts = [i for i, c in enumerate(chunks) if c[2]]
        assert lasts == [len(chunks) - 1]  # exactly one last chunk, at the end
        assert out.getvalue() == b"".join(c[0] for c in chunks) and info.complete
        assert info.rows == sum(c[1] for c in chunks) == chunks[-1][3]

    check()
