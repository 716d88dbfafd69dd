"""Every recorded Seldon version (versions/*): the same traffic gives that version's answers and logged events.

What: per recorded version, an executor told to be that version (the local engine with --seldon-version; a real
binary only for the version it is, see conftest) in front of the fake model the recordings used, logging to a
recording receiver; the version's four recorded exchanges replayed (two predictions, one with Seldon-Puid; two
feedbacks, one with the first prediction's puid).
Wait: until the receiver holds the recorded number of events (and a second more).
Assert: exchanges exactly as recorded (status, header names in order and values, bodies byte for byte; Date and
generated puids excepted); logged events exactly as recorded (no feedback events in 1.3.0, no Ce-Protocol before
1.14; Ce-Id, Ce-Time, trace context, ports, generated puids excepted), bodies byte for byte. And the README's
Seldon-Skip-Logging row: ignored before 1.13, honoured from it.
Cleanup: the engines fixture stops the executor; the fake model stops in its fixture.
"""

from __future__ import annotations

import pytest
import requests

from devstack.servers.engine import EngineServer
from tests.conformance.compare import header_problems
from tests.conformance.conftest import Executor
from tests.conformance.recorded import load, logged_events, version_folders, version_of
from tests.conformance.test_rest import Replayed, counterparts, replay
from tests.fixtures.engine import FakeModel, RecordingReceiver, predictor_for

pytestmark = pytest.mark.integration


def start(executor: Executor, model: FakeModel, receiver: RecordingReceiver, version: str) -> EngineServer:
    """The executor as `version`, in front of the fake model (REST and gRPC ports: the one fake), logging to
    the receiver."""
    return executor.start(predictor_for(model.port, model.port, receiver.url), seldon_version=version)


def exchange_problems(done: Replayed) -> list[str]:
    exchange, answer = done.exchange, done.answer
    where = exchange["label"]
    sent_puid = done.sent_headers.get("Seldon-Puid")
    problems = [] if answer.status == exchange["status"] else [f"{where}: status {answer.status}"]
    problems += header_problems(
        answer.headers,
        [tuple(h) for h in exchange["response_headers_ordered"]],
        where,
        puid=sent_puid,
        generated_puid=sent_puid is None,
    )
    if answer.body != exchange["response_body"].encode():
        problems.append(f"{where}: body {answer.body!r} != recorded {exchange['response_body']!r}")
    return problems


@pytest.mark.parametrize("folder", version_folders())
def test_each_version_answers_and_logs_as_recorded(
    folder: str, executor: Executor, fake_model: FakeModel, recording_receiver: RecordingReceiver
) -> None:
    version = version_of(folder)
    engine = start(executor, fake_model, recording_receiver, version)
    replayed = replay(engine.url, load(f"versions/{folder}/client-exchanges.json"))
    problems = [p for done in replayed for p in exchange_problems(done)]

    recorded = logged_events(f"versions/{folder}")
    received = recording_receiver.wait_for(len(recorded))
    received = recording_receiver.settle()
    if len(received) != len(recorded):
        problems.append(f"{len(received)} events logged, the {version} executor logged {len(recorded)}")
    for want, puid, got in counterparts(replayed, recorded, received, problems):
        problems += header_problems(got.headers, want.headers, want.name, puid=puid)
        if (got.method, got.path, got.body) != (want.method, want.path, want.body):
            problems.append(f"{want.name}: {got.method} {got.path} {got.body!r} != recorded {want.body!r}")
    assert [c.header("Seldon-Puid") for c in fake_model.calls] == [done.puid for done in replayed], (
        "the model gets each call's puid as the Seldon-Puid header (README: also passed to the model)"
    )
    assert problems == [], "\n".join(problems)


# README "Other versions in range": Seldon-Skip-Logging honoured: no in 1.3.0, 1.4.0, 1.10.0; yes from 1.13.1
@pytest.mark.parametrize("folder", version_folders())
def test_skip_logging_is_honoured_from_1_13(
    folder: str, executor: Executor, fake_model: FakeModel, recording_receiver: RecordingReceiver
) -> None:
    version = version_of(folder)
    engine = start(executor, fake_model, recording_receiver, version)
    answer = requests.post(
        f"{engine.url}/api/v1.0/predictions",
        data=b'{"data": {"ndarray": ["skip me"]}}',
        headers={"Content-Type": "application/json", "Seldon-Puid": "skip-1", "Seldon-Skip-Logging": "true"},
        timeout=30,
    )
    assert answer.status_code == 200
    honoured = tuple(int(part) for part in version.split(".")) >= (1, 13, 0)
    events = recording_receiver.settle()
    assert len(events) == (0 if honoured else 2), f"{version}: {[e.header('Ce-Type') for e in events]}"
