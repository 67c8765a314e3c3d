"""Notifications: stored with the change that causes them, delivered once by a real worker after commit."""

import pytest
from sqlalchemy import select

from hanoipay.db import job_session
from hanoipay.notifications import Notification, list_notifications, notify, register_channel
from hanoipay.settings import get_settings
from tests.factories import run_jobs


def drain(redis_url: str) -> None:
    run_jobs(redis_url)


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.sent: list[str] = []

    def deliver(self, notification: Notification) -> None:
        self.sent.append(notification.text)


@pytest.fixture
def recorder() -> Recorder:
    channel = Recorder()
    register_channel(channel)
    get_settings().notification_channel = "recorder"
    yield channel
    get_settings().notification_channel = "inbox"


def test_a_notification_is_delivered_once_after_commit(redis_url, recorder):
    with job_session() as session:
        first = notify(
            session, recipient_id="usr_a", kind="parking.expiring", text="Còn 10 phút", dedupe_key="k1"
        )
        again = notify(
            session, recipient_id="usr_a", kind="parking.expiring", text="Còn 10 phút", dedupe_key="k1"
        )
    assert first is not None
    assert again is None
    drain(redis_url)
    drain(redis_url)
    assert recorder.sent == ["Còn 10 phút"]
    with job_session() as session:
        [stored] = list_notifications(session, "usr_a")
        assert stored.channel == "recorder"
        assert stored.delivered_at is not None


def test_a_rolled_back_change_notifies_nobody(redis_url, recorder):
    def change_that_fails() -> None:
        with job_session() as session:
            notify(session, recipient_id="usr_b", kind="tuition.due", text="Hạn nộp học phí")
            raise RuntimeError("the change fails")

    with pytest.raises(RuntimeError):
        change_that_fails()
    drain(redis_url)
    assert recorder.sent == []
    with job_session() as session:
        assert session.scalars(select(Notification)).all() == []
