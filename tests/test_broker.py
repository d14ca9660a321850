"""The Celery broker connection as a worker meets Redis going away: a task that was running when
the worker gave its connection up still acknowledges its message when it ends, once Redis is
back (the worker's consumer does not crash on it). Against a redis-server of the test's own."""

import contextlib
import uuid

import pytest
import redis
from kombu import Connection, Queue
from kombu.common import ignore_errors
from kombu.transport.redis import Transport as KombuRedisTransport

from config.celery import RedisTransport, app
from tests.webhooks import processes


@pytest.fixture
def broker(tmp_path):
    """A private redis-server: yields a function that stops it (saving its data, as a restart
    of Redis with persistence would keep the unacknowledged set) and starts it again."""
    port = processes.free_port()
    url = f"redis://127.0.0.1:{port}/0"
    started = [processes.redis_start(port, tmp_path)]

    def outage(during):
        with contextlib.suppress(redis.ConnectionError):
            redis.Redis.from_url(url).shutdown(save=True)
        started[-1].wait(10)
        during()
        started.append(processes.redis_start(port, tmp_path))

    try:
        yield url, outage
    finally:
        processes.stop(started[-1])


def _received_then_connection_lost(connection: Connection, outage):
    """A message taken (unacknowledged) from a queue; then Redis goes away, and the connection
    is handled as celery's consumer handles a lost one: collected, then closed with its errors
    ignored; then Redis is back."""
    queue = Queue(f"broker-test-{uuid.uuid4().hex}")
    with connection.Producer() as producer:
        producer.publish({"n": 1}, routing_key=queue.name, declare=[queue])
    message = queue(connection.default_channel).get(no_ack=False)
    assert message is not None

    def give_up():
        connection.collect()
        ignore_errors(connection, connection.close)

    outage(give_up)
    return message


def test_a_message_received_before_the_connection_was_lost_is_acknowledged_after(broker):
    url, outage = broker
    connection = app.connection_for_read(url)
    assert isinstance(connection.transport, RedisTransport)  # settings.CELERY_BROKER_TRANSPORT
    message = _received_then_connection_lost(connection, outage)
    unacked = redis.Redis.from_url(url)
    assert unacked.hlen("unacked") == 1

    # The worker acknowledges through the lost connection's transport: it still knows where
    # Redis is, so a channel that must connect again (its pools are gone when its close broke
    # off half-way, as a worker's does) can.
    assert message.channel.connection.client.hostname == "127.0.0.1"
    message.ack()

    assert unacked.hlen("unacked") == 0  # the acknowledgement reached Redis


def test_kombus_own_transport_still_forgets_the_connection(broker):
    # When this fails, kombu keeps the parameters itself: remove RedisTransport
    # (config/celery.py) and CELERY_BROKER_TRANSPORT.
    url, outage = broker
    message = _received_then_connection_lost(Connection(url, transport=KombuRedisTransport), outage)

    assert message.channel.connection.client is None
