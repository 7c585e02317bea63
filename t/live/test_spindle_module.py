"""The `spindle` module that apps import: worker_id(), core_id(), sleep(),
wait_fd_read()/wait_fd_write() and the postfork decorator."""

import threading

import pytest
import requests

from harness import example


@pytest.fixture(scope="module")
def srv(module_spindle):
    return module_spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("probe.py"),
                          "--processes", "2", name="module")


def info(srv):
    r = requests.get(srv.url + "/spindle", headers={"Connection": "close"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_worker_id_matches_ready_line(srv):
    workers = srv.worker_pids()
    for _ in range(20):
        i = info(srv)
        assert i["worker_id"] in (1, 2)
        assert workers[i["worker_id"]] == i["pid"], "worker_id %d is pid %d, log says %s" % (
            i["worker_id"], i["pid"], workers)


def test_core_id_is_a_small_index(srv):
    i = info(srv)
    assert isinstance(i["core_id"], int) and i["core_id"] >= 0


def test_postfork_ran_in_the_worker(srv):
    i = info(srv)
    assert i["postfork"] == [i["pid"]], "postfork hook must run once, in this worker: %s" % i


def test_sleep(srv):
    r = requests.get(srv.url + "/spindle_sleep", params={"s": "0.3"}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["slept"] >= 0.29


def test_sleep_does_not_fail_concurrent_requests(srv):
    errors = []

    def go():
        try:
            r = requests.get(srv.url + "/spindle_sleep", params={"s": "0.2"}, timeout=20)
            assert r.status_code == 200 and r.json()["slept"] >= 0.19
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []


def test_wait_fd(srv):
    r = requests.get(srv.url + "/wait_fd", timeout=15)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["data"] == "x"
    # an empty pipe waits for the timeout; a ready one returns at once
    assert j["t_empty"] >= 0.25
    assert j["t_ready"] < 4
    assert j["empty"] != j["ready"], "a timeout and a ready fd must be told apart: %s" % j
