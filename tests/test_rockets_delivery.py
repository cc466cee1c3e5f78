"""Tests of the send order, the ledger, the dispatcher, the socket transport and the comparison."""

import collections
import socket
import threading
import time
import unittest

from lunar.rockets import generator
from lunar.rockets.ledger import Ledger
from lunar.rockets.ordering import DUPLICATE_MAX_DISTANCE, Delivery, add_duplicates, shuffle_windows
from lunar.rockets.sender import Dispatcher, Target
from lunar.rockets.transport import ConnectionClosed, InvalidResponse, SocketPostConnection
from lunar.rockets.verify import compare_rockets, rockets_target

TEST_TIMEOUT_S = 5.0


def sample_messages(count, seed=444, rockets=20):
    return list(generator.generate_messages(seed, rockets, count))


class DuplicatesTest(unittest.TestCase):
    def test_zero_probability_keeps_stream(self):
        messages = sample_messages(500)
        deliveries = list(add_duplicates(messages, 0.0, 444))
        self.assertEqual([delivery.message for delivery in deliveries], messages)
        self.assertFalse(any(delivery.duplicate for delivery in deliveries))

    def test_duplicates_follow_original(self):
        messages = sample_messages(3000)
        deliveries = list(add_duplicates(messages, 0.1, 444))
        duplicates = [delivery for delivery in deliveries if delivery.duplicate]
        self.assertGreater(len(duplicates), 200)
        self.assertLess(len(duplicates), 400)
        self.assertEqual([delivery.message for delivery in deliveries if not delivery.duplicate], messages)

        first_position = {}
        for position, delivery in enumerate(deliveries):
            if not delivery.duplicate:
                first_position[id(delivery.message)] = position
        for position, delivery in enumerate(deliveries):
            if delivery.duplicate:
                distance = position - first_position[id(delivery.message)]
                self.assertGreater(distance, 0)
                # Other duplicates falling due at the same place may push it a little further.
                self.assertLessEqual(distance, 2 * DUPLICATE_MAX_DISTANCE)

    def test_duplicates_deterministic(self):
        messages = sample_messages(1000)
        first = [(delivery.message.content(), delivery.duplicate) for delivery in add_duplicates(messages, 0.2, 1)]
        second = [(delivery.message.content(), delivery.duplicate) for delivery in add_duplicates(messages, 0.2, 1)]
        self.assertEqual(first, second)

    def test_invalid_probability_rejected(self):
        with self.assertRaises(ValueError):
            list(add_duplicates([], 1.5, 1))


class ShuffleTest(unittest.TestCase):
    def test_shuffle_stays_within_windows(self):
        deliveries = [Delivery(message) for message in sample_messages(1003)]
        shuffled = list(shuffle_windows(deliveries, 10, 444))
        self.assertEqual(len(shuffled), len(deliveries))
        self.assertNotEqual(shuffled, deliveries)
        for start in range(0, len(deliveries), 10):
            window = deliveries[start:start + 10]
            self.assertEqual(sorted(map(id, shuffled[start:start + 10])), sorted(map(id, window)), start)

    def test_small_window_keeps_order(self):
        deliveries = [Delivery(message) for message in sample_messages(100)]
        self.assertEqual(list(shuffle_windows(deliveries, 0, 1)), deliveries)
        self.assertEqual(list(shuffle_windows(deliveries, 1, 1)), deliveries)

    def test_shuffle_deterministic(self):
        deliveries = [Delivery(message) for message in sample_messages(300)]
        first = [id(delivery) for delivery in shuffle_windows(deliveries, 16, 7)]
        second = [id(delivery) for delivery in shuffle_windows(deliveries, 16, 7)]
        self.assertEqual(first, second)


class LedgerTest(unittest.TestCase):
    def setUp(self):
        self.messages = sample_messages(200, rockets=3)
        self.ledger = Ledger(generator.channels_for_seed(444, 3))
        list(self.ledger.track(self.messages))

    def expected_final(self, channel):
        state = Ledger([channel]).expected_state(channel)
        for message in self.messages:
            if message.channel == channel:
                state.apply(message)
        return state

    def test_out_of_order_acks_apply_in_order(self):
        for message in reversed(self.messages):
            self.ledger.acknowledge(message)
        self.assertEqual(self.ledger.lost, 0)
        for channel in self.ledger.channels():
            expected = self.expected_final(channel)
            state = self.ledger.expected_state(channel)
            self.assertEqual(state.last_message_number, expected.last_message_number)
            self.assertEqual(state.speed, expected.speed)
            self.assertEqual(state.mission, expected.mission)
            self.assertEqual(self.ledger.held_count(channel), 0)

    def test_repeated_ack_counts_once(self):
        self.ledger.acknowledge(self.messages[0])
        self.ledger.acknowledge(self.messages[0])
        self.assertEqual(self.ledger.acknowledged, 1)

    def test_missing_ack_stops_state(self):
        channel = self.messages[0].channel
        skipped = [message for message in self.messages if message.channel == channel][4]
        for message in self.messages:
            if message is not skipped:
                self.ledger.acknowledge(message)
        self.assertEqual(self.ledger.lost, 1)
        self.assertEqual(self.ledger.expected_state(channel).last_message_number, 4)
        self.assertGreater(self.ledger.held_count(channel), 0)
        self.assertEqual(self.ledger.generated_count(channel), sum(1 for m in self.messages if m.channel == channel))


class DispatcherTest(unittest.TestCase):
    def deliveries(self, count):
        return [Delivery(message) for message in sample_messages(count)]

    def test_hands_out_every_delivery(self):
        deliveries = self.deliveries(50)
        dispatcher = Dispatcher(iter(deliveries))
        taken = []
        while True:
            delivery = dispatcher.take()
            if delivery is None:
                break
            taken.append(delivery)
            dispatcher.done(delivery, True)
        self.assertEqual(taken, deliveries)
        self.assertEqual(dispatcher.dropped, [])

    def test_due_redelivery_goes_first(self):
        deliveries = self.deliveries(3)
        dispatcher = Dispatcher(iter(deliveries), redelivery_delay_s=0.05)
        first = dispatcher.take()
        dispatcher.done(first, False)
        time.sleep(0.06)
        again = dispatcher.take()
        self.assertIs(again, first)
        dispatcher.done(again, True)
        rest = []
        while True:
            delivery = dispatcher.take()
            if delivery is None:
                break
            rest.append(delivery)
            dispatcher.done(delivery, True)
        self.assertEqual(rest, deliveries[1:])
        self.assertEqual(dispatcher.dropped, [])

    def test_redelivery_waits_for_delay(self):
        deliveries = self.deliveries(2)
        dispatcher = Dispatcher(iter(deliveries), redelivery_delay_s=0.1)
        first = dispatcher.take()
        second = dispatcher.take()
        dispatcher.done(first, False)
        started = time.monotonic()
        # The second delivery is still in flight, so the run has not ended
        # and the redelivery must wait for its due time.
        again = dispatcher.take()
        self.assertIs(again, first)
        self.assertGreaterEqual(time.monotonic() - started, 0.08)
        dispatcher.done(again, True)
        dispatcher.done(second, True)
        self.assertIsNone(dispatcher.take())

    def test_waiting_redelivery_dropped_at_end(self):
        deliveries = self.deliveries(2)
        dispatcher = Dispatcher(iter(deliveries), redelivery_delay_s=60.0)
        first = dispatcher.take()
        second = dispatcher.take()
        dispatcher.done(first, True)
        dispatcher.done(second, False)
        started = time.monotonic()
        self.assertIsNone(dispatcher.take())
        self.assertLess(time.monotonic() - started, 1.0)
        self.assertEqual(dispatcher.dropped, [second])

    def test_message_delay_paces_new_deliveries(self):
        dispatcher = Dispatcher(iter(self.deliveries(4)), message_delay_s=0.05)
        started = time.monotonic()
        for _ in range(4):
            dispatcher.done(dispatcher.take(), True)
        elapsed = time.monotonic() - started
        self.assertGreaterEqual(elapsed, 0.14)
        self.assertLess(elapsed, 2.0)

    def test_waiting_senders_end_together(self):
        dispatcher = Dispatcher(iter(self.deliveries(1)))
        delivery = dispatcher.take()
        results = []
        waiters = [threading.Thread(target=lambda: results.append(dispatcher.take())) for _ in range(3)]
        for waiter in waiters:
            waiter.start()
        dispatcher.done(delivery, True)
        for waiter in waiters:
            waiter.join(TEST_TIMEOUT_S)
        self.assertEqual(results, [None, None, None])

    def test_stop_ends_run(self):
        dispatcher = Dispatcher(iter(self.deliveries(100)))
        dispatcher.take()
        dispatcher.stop()
        self.assertTrue(dispatcher.ended)
        self.assertIsNone(dispatcher.take())


class ScriptedServer:
    """A one-connection TCP server that sends the next canned response for each request."""

    def __init__(self, responses):
        self.responses = list(responses)
        self.requests = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.listener.settimeout(TEST_TIMEOUT_S)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            connection, _ = self.listener.accept()
        except OSError:
            return
        connection.settimeout(TEST_TIMEOUT_S)
        with connection:
            received = b""
            for response in self.responses:
                while b"\r\n\r\n" not in received:
                    data = connection.recv(65536)
                    if not data:
                        return
                    received += data
                head, _, rest = received.partition(b"\r\n\r\n")
                length = int(collections.OrderedDict(
                    line.split(b": ", 1) for line in head.split(b"\r\n")[1:]
                )[b"Content-Length"])
                while len(rest) < length:
                    rest += connection.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + rest[:length])
                received = rest[length:]
                if response is None:
                    return
                connection.sendall(response)

    def close(self):
        self.listener.close()
        self.thread.join(TEST_TIMEOUT_S)


class SocketTransportTest(unittest.TestCase):
    def post_all(self, responses, bodies):
        server = ScriptedServer(responses)
        connection = SocketPostConnection("127.0.0.1", server.port, "/messages", TEST_TIMEOUT_S)
        try:
            results = [connection.post(body) for body in bodies]
        finally:
            connection.close()
            server.close()
        return results, server.requests

    def test_keep_alive_content_length(self):
        response = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
        results, requests = self.post_all([response, response], [b'{"a": 1}', b'{"b": 2}'])
        self.assertEqual(results, [(202, b""), (202, b"")])
        self.assertEqual(len(requests), 2)
        self.assertTrue(requests[0].startswith(b"POST /messages HTTP/1.1\r\n"))
        self.assertIn(b"Content-Type: application/json\r\n", requests[0])
        self.assertTrue(requests[1].endswith(b'\r\n\r\n{"b": 2}'))

    def test_error_body_is_returned(self):
        response = b'HTTP/1.1 400 Bad Request\r\nContent-Length: 18\r\n\r\n{"error": "wrong"}'
        results, _ = self.post_all([response], [b"{}"])
        self.assertEqual(results, [(400, b'{"error": "wrong"}')])

    def test_chunked_response(self):
        response = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbusy\r\n0\r\n\r\n"
        results, _ = self.post_all([response, b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"], [b"{}", b"{}"])
        self.assertEqual(results, [(503, b"busy"), (202, b"")])

    def test_interim_response_skipped(self):
        response = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
        results, _ = self.post_all([response], [b"{}"])
        self.assertEqual(results, [(202, b"")])

    def test_closed_before_response(self):
        server = ScriptedServer([None])
        connection = SocketPostConnection("127.0.0.1", server.port, "/messages", TEST_TIMEOUT_S)
        try:
            with self.assertRaises(ConnectionClosed):
                connection.post(b"{}")
            self.assertFalse(connection.is_open)
        finally:
            connection.close()
            server.close()

    def test_invalid_status_line(self):
        server = ScriptedServer([b"SSH-2.0-OpenSSH\r\n\r\n"])
        connection = SocketPostConnection("127.0.0.1", server.port, "/messages", TEST_TIMEOUT_S)
        try:
            with self.assertRaises(InvalidResponse):
                connection.post(b"{}")
        finally:
            connection.close()
            server.close()

    def test_connection_close_header(self):
        server = ScriptedServer([b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"])
        connection = SocketPostConnection("127.0.0.1", server.port, "/messages", TEST_TIMEOUT_S, keep_alive=False)
        try:
            self.assertEqual(connection.post(b"{}"), (202, b""))
            self.assertFalse(connection.is_open)
        finally:
            connection.close()
            server.close()
        self.assertIn(b"Connection: close\r\n", server.requests[0])


class CompareRocketsTest(unittest.TestCase):
    def setUp(self):
        self.messages = sample_messages(60, rockets=3)
        self.ledger = Ledger(generator.channels_for_seed(444, 3))
        list(self.ledger.track(self.messages))
        for message in self.messages:
            self.ledger.acknowledge(message)

    def server_rockets(self):
        rockets = {}
        for channel in self.ledger.channels():
            state = self.ledger.expected_state(channel)
            rockets[channel] = {
                "channel": channel,
                "type": state.type,
                "speed": state.speed,
                "mission": state.mission,
                "status": state.status,
                "explosionReason": state.explosion_reason,
                "lastMessageNumber": state.last_message_number,
                "pendingMessages": 0,
            }
        return rockets

    def test_matching_rockets_pass(self):
        result = compare_rockets(self.ledger, self.server_rockets(), 444)
        self.assertTrue(result.passed)
        self.assertEqual(result.rockets_checked, 3)

    def test_field_mismatch_listed(self):
        rockets = self.server_rockets()
        channel = self.ledger.channels()[1]
        rockets[channel]["speed"] += 500
        rockets[channel]["status"] = "exploded"
        result = compare_rockets(self.ledger, rockets, 444)
        self.assertFalse(result.passed)
        self.assertEqual([(m.channel, m.field) for m in result.mismatches], [(channel, "speed"), (channel, "status")])

    def test_missing_rocket_listed(self):
        rockets = self.server_rockets()
        channel = self.ledger.channels()[0]
        del rockets[channel]
        result = compare_rockets(self.ledger, rockets, 444)
        self.assertEqual([(m.channel, m.field, m.got) for m in result.mismatches], [(channel, "rocket", "missing")])

    def test_unacknowledged_launch_allows_pending(self):
        ledger = Ledger(generator.channels_for_seed(444, 3))
        list(ledger.track(self.messages))
        channel = ledger.channels()[0]
        pending = {channel: {"channel": channel, "status": "pending", "lastMessageNumber": 0}}
        self.assertEqual(compare_rockets(ledger, pending, 444).mismatches, [])
        self.assertEqual(compare_rockets(ledger, {}, 444).mismatches, [])
        self.assertEqual(compare_rockets(ledger, {}, 444).lost, len(self.messages))

    def test_earlier_run_detected(self):
        rockets = self.server_rockets()
        channel = self.ledger.channels()[2]
        rockets[channel]["lastMessageNumber"] = self.ledger.generated_count(channel) + 1
        result = compare_rockets(self.ledger, rockets, 444)
        self.assertEqual(result.earlier_run_channels, [channel])
        self.assertFalse(result.passed)

    def test_rockets_path_next_to_messages(self):
        self.assertEqual(rockets_target(Target("localhost", 8088, "/messages")).path, "/rockets")
        self.assertEqual(rockets_target(Target("localhost", 8088, "/api/messages")).path, "/api/rockets")


if __name__ == "__main__":
    unittest.main()
