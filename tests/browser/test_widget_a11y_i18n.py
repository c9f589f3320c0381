"""The widget for assistive technology and in other languages, in real headless Chromium."""

from __future__ import annotations

import pytest

from django_realtime.templatetags.django_realtime import widget_messages, widget_status

pytestmark = pytest.mark.browser

WIDGET = "[data-realtime-widget]"

#: Counts every change to each widget's status text, and snapshots each transcript line
#: as it is added (in the microtask after, before any later channel message).
OBSERVE = """
(() => {
  window.__statusChanges = 0;
  window.__lines = [];
  const watch = () => {
    const status = document.querySelector("[data-realtime-status]");
    new MutationObserver((records) => { window.__statusChanges += records.length; })
      .observe(status, {childList: true, characterData: true, subtree: true});
    new MutationObserver((records) => records.forEach((r) => r.addedNodes.forEach((li) => {
      const text = li.querySelector(".realtime-widget__text");
      const note = li.querySelector(".realtime-widget__sr-only");
      window.__lines.push({role: li.dataset.role, busy: li.getAttribute("aria-busy"),
        final: li.hasAttribute("data-final"), italic: getComputedStyle(text).fontStyle,
        note: note && note.textContent, noteWidth: note && note.getBoundingClientRect().width});
    }))).observe(document.querySelector("[data-realtime-transcript]"), {childList: true});
  };
  document.addEventListener("DOMContentLoaded", watch);
})();
"""


def test_transcript_is_a_focusable_labelled_log(browser, open_page, realtime_fake, make_preset):
    make_preset("assistant")
    rt = open_page(browser)
    rt.open()
    rt.click("start")
    rt.wait_state("connected")
    rt.page.wait_for_selector("[data-realtime-transcript] li[data-final]", timeout=10_000)
    # (An empty transcript is not shown, so it is no tab stop until it has lines.)
    log = rt.page.get_by_role("log", name="Transcript: Voice assistant (assistant)")
    assert log.get_attribute("tabindex") == "0"
    rt.page.focus("[data-realtime-start]")
    rt.page.keyboard.press("Tab")  # Mute (enabled while connected), then the log
    rt.page.keyboard.press("Tab")
    assert rt.page.evaluate("document.activeElement.getAttribute('role')") == "log"


def test_status_is_announced_only_when_it_changes(browser, open_page, realtime_fake, make_preset):
    make_preset("assistant")
    rt = open_page(browser)
    rt.page.add_init_script(OBSERVE)
    rt.open()
    status = rt.page.get_by_role("status")
    assert status.get_attribute("aria-live") == "polite"
    rt.click("start")
    rt.wait_state("connected")
    rt.page.wait_for_function(
        "() => document.querySelector('[data-realtime-status]').textContent"
        " === 'Connected. Speak now.'"
    )
    before = rt.page.evaluate("window.__statusChanges")
    assert before == 2  # (Ready. was set before the observer) Connecting…, Connected.
    for _ in range(4):  # every toggle re-renders the widget
        rt.click("mute")
    assert rt.page.get_attribute("[data-realtime-mute]", "aria-pressed") == "false"
    assert rt.page.evaluate("window.__statusChanges") == before


def test_interim_text_is_marked_beyond_colour(browser, open_page, realtime_fake, make_preset):
    make_preset("assistant")
    rt = open_page(browser)
    rt.page.add_init_script(OBSERVE)
    rt.open()
    rt.click("start")
    rt.page.wait_for_selector(
        "[data-realtime-transcript] li[data-role=assistant][data-final]", timeout=15_000
    )
    lines = rt.page.evaluate("window.__lines")
    by_role = {line["role"]: line for line in lines}
    # The assistant's line streams in: interim first, italic, busy, "(interim)" for readers.
    assert by_role["assistant"]["final"] is False
    assert by_role["assistant"]["busy"] == "true"
    assert by_role["assistant"]["italic"] == "italic"
    assert by_role["assistant"]["note"] == " (interim)"
    assert by_role["assistant"]["noteWidth"] <= 1  # visually hidden
    # Once final, every mark is gone.
    final = rt.page.eval_on_selector(
        "[data-realtime-transcript] li[data-role=assistant]",
        "li => ({busy: li.getAttribute('aria-busy'), notes: li.querySelectorAll("
        "'.realtime-widget__sr-only').length, italic: getComputedStyle("
        "li.querySelector('.realtime-widget__text')).fontStyle, text: li.textContent})",
    )
    assert final == {
        "busy": None,
        "notes": 0,
        "italic": "normal",
        "text": "Assistant Hello! This is the fake Realtime model speaking.",
    }


def test_two_widgets_have_distinct_button_names(browser, open_page, realtime_fake, make_preset):
    make_preset("assistant")
    make_preset("sales")
    rt = open_page(browser)
    rt.open(second_preset="sales")
    page = rt.page
    names = page.eval_on_selector_all(
        "button", "bs => bs.filter(b => b.checkVisibility()).map(b => b.getAttribute('aria-label'))"
    )
    assert names == [
        "Start: Voice assistant (assistant)",
        "Mute: Voice assistant (assistant)",
        "Start: Sales desk",
        "Mute: Sales desk",
    ]
    page.get_by_role("button", name="Start: Sales desk").click()
    page.get_by_role("button", name="Stop: Sales desk").wait_for(timeout=10_000)
    assert page.get_by_role("button", name="Start: Voice assistant (assistant)").count() == 1
    page.get_by_role("button", name="Stop: Sales desk").click()
    page.get_by_role("button", name="Start: Sales desk").wait_for()


def test_french_page_speaks_french(browser_without_mic, open_page, realtime_fake, make_preset):
    make_preset("assistant")
    rt = open_page(browser_without_mic)
    rt.open(lang="fr")
    assert rt.page.get_attribute("html", "lang") == "fr"
    assert rt.text("[data-realtime-status]") == "Prêt."
    assert rt.text("[data-realtime-start]") == "Démarrer"
    rt.click("start")
    assert rt.wait_state("failed") == "failed"
    assert rt.text("[data-realtime-status]") == "Non connecté."
    assert rt.text("[data-realtime-error-message]") == (
        "L’accès au micro est bloqué. Autorisez le micro pour ce site, puis réessayez."  # noqa: RUF001
    )
    assert rt.text("[data-realtime-retry]") == "Réessayer"


def test_page_scripts_can_still_override_messages(
    browser_without_mic, open_page, realtime_fake, make_preset
):
    make_preset("assistant")
    rt = open_page(browser_without_mic)
    rt.open()
    # The JS defaults and the translated config name the same codes and states.
    assert sorted(rt.page.evaluate("Object.keys(DjangoRealtime.messages)")) == sorted(
        widget_messages()
    )
    assert sorted(rt.page.evaluate("Object.keys(DjangoRealtime.status)")) == sorted(widget_status())
    rt.page.evaluate(
        "DjangoRealtime.messages.microphone_denied = 'Please allow the microphone.';"
        " DjangoRealtime.status.failed = 'Offline.'"
    )
    rt.click("start")
    assert rt.wait_state("failed") == "failed"
    assert rt.text("[data-realtime-error-message]") == "Please allow the microphone."
    assert rt.text("[data-realtime-status]") == "Offline."
