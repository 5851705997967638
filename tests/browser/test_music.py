"""Create a Suno music job in the browser, watch its page follow it to two songs, and play one in
Debian's chromium; the clips fit a phone's width."""

from playwright.sync_api import expect

from tests.browser.conftest import sign_in


def test_music_job_page_shows_two_clips_that_play(page, stack):
    sign_in(page, "admin", stack.admin_password)
    page.get_by_role("link", name="Create", exact=True).click()
    page.get_by_test_id("kind-suno").click()
    page.get_by_label("Mode", exact=True).select_option("custom")
    page.get_by_label("Description or lyrics").fill("[Verse]\nNeon rain on <b>Shibuya</b>")
    page.get_by_label("Title", exact=True).fill("Neon Rain")
    page.get_by_label("Style", exact=True).fill("city pop, dreamy")
    page.get_by_role("button", name="Create").click()

    page.wait_for_url("**/jobs/*/")
    status = page.get_by_test_id("job-status")
    expect(status).not_to_have_attribute("data-status", "succeeded")  # it starts unfinished
    expect(status).to_have_attribute("data-status", "succeeded", timeout=60_000)

    clips = page.get_by_test_id("music-clip")
    expect(clips).to_have_count(2)  # the page reloaded with the finished result
    expect(clips.first.get_by_role("heading", name="Neon Rain")).to_be_visible()
    expect(clips.first.get_by_test_id("music-cover")).to_be_visible()
    clips.first.get_by_text("Lyrics", exact=True).click()
    expect(clips.first.get_by_test_id("music-lyrics")).to_have_text(
        "[Verse]\nNeon rain on <b>Shibuya</b>"
    )
    players = page.get_by_test_id("music-player")
    expect(players).to_have_count(2)
    assert all(
        src.startswith("/jobs/assets/")
        for src in players.evaluate_all("a => a.map(p => p.getAttribute('src'))")
    )

    audio = players.first.element_handle()
    page.wait_for_function("a => a.readyState >= 1 && a.duration > 0", arg=audio, timeout=15_000)
    assert page.evaluate("a => a.duration", audio) > 4
    # Muted, so that chromium's autoplay policy lets a script start it.
    page.evaluate("a => { a.muted = true; return a.play(); }", audio)
    page.wait_for_function("a => a.currentTime > 0.2", arg=audio, timeout=15_000)
    assert page.evaluate("a => a.error", audio) is None

    page.set_viewport_size({"width": 360, "height": 740})
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    box = players.first.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360
