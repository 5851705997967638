"""`make demo`'s launcher: starts web, worker and simulator; Ctrl-C stops them all."""

import time
import urllib.request

from tests.launcher_process import start_demo


def test_demo_starts_everything_and_ctrl_c_leaves_no_process(tmp_path):
    stack = start_demo(tmp_path)
    try:
        assert stack.admin_password, "the demo admin's password is printed on the first run"
        with urllib.request.urlopen(stack.url + "/accounts/login/", timeout=10) as response:
            assert response.status == 200
        with urllib.request.urlopen(stack.simulator_url + "/__health", timeout=10) as response:
            assert response.status == 200
        children = stack.descendants()
        assert len(children) >= 3  # simulator, web, worker
    finally:
        code = stack.stop()
    assert code == 0
    time.sleep(0.5)
    assert stack.descendants() == [], "processes were left behind"
    assert "Stopped." in "".join(stack.lines)


def test_second_start_reuses_the_data_and_does_not_reprint_the_password(tmp_path):
    first = start_demo(tmp_path)
    first.stop()
    second = start_demo(tmp_path)
    try:
        assert second.admin_password == ""
        assert "password was printed on the first run" in "".join(second.lines)
    finally:
        second.stop()
