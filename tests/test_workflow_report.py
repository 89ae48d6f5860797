"""`snakemake --report` of the shared finished tiny run, built with an override full of hostile strings: no text
from a config reaches the report (Snakemake 9 writes a job's params unescaped into the report's inline script),
nothing runs when it is opened (headless Chromium through Playwright), and every caption renders without a
docutils warning."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from helpers import snakemake, write_config

pytestmark = pytest.mark.workflow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Each would open a dialog or add an element if it reached the page as markup or script.
HOSTILE = {
    "sentence": "</script><script>alert('sentence')</script> je suis là . <img src=x id=hostile-1 onerror=alert(1)>",
    "prefix": "<img src=x id=hostile-2 onerror=alert(2)>",
    "url": "<img src=x id=hostile-3 onerror=alert(3)>.txt",
    "member": "</script><svg id=hostile-4 onload=alert(4)>",
}


@pytest.fixture(scope="module")
def hostile_report(finished_run, tmp_path_factory) -> Path:
    """report.html of the finished run with every free-text setting of the
    config made hostile (as many figure sentences as the run drew, so that the report finds every figure)."""
    workdir, config_file, snakefile = finished_run
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    sentences = config["figures"]["sentences"]
    assert sentences, "the finished run draws no sentence from the config: nothing to test"
    folder = tmp_path_factory.mktemp("report")
    pair = config["pairs"][0]
    hostile = write_config(folder / "hostile.yaml", {
        "figures": {"sentences": [HOSTILE["sentence"]] * len(sentences)},
        "prepare": {"filter": {"target_prefixes": [HOSTILE["prefix"]]}},
        "corpora": {pair: {"url": HOSTILE["url"], "member": HOSTILE["member"]}},
    })
    report = folder / "report.html"
    built = snakemake(workdir, "--report", str(report), "--configfile", str(config_file), str(hostile),
                      snakefile=snakefile)
    (folder / "snakemake.log").write_text(built.stdout + built.stderr, encoding="utf-8")
    return report


def report_results(report: Path) -> dict:
    """The report's `results` object: per file its caption (HTML), rule, wildcards and params."""
    html = report.read_text(encoding="utf-8")
    match = re.search(r'<script id="results">\s*var results = (.*?);\s*</script>', html, re.S)
    assert match, "no results script in the report"
    return json.loads(match.group(1))


def test_a_report_of_results_made_with_other_settings_says_so(hostile_report):
    """The hostile settings change the corpus, the prefixes and the figures' sentences of a finished run: the
    report shows that run's results (Snakemake reports what is on disk), and the command warns in one line."""
    output = (hostile_report.parent / "snakemake.log").read_text(encoding="utf-8")
    [warning] = [line for line in output.splitlines() if line.startswith("warning: --report: ")]
    assert re.match(r"warning: --report: \d+ jobs have to run before the results are those of this config and "
                    r"code \(snakemake -n lists them and why\)", warning), warning
    assert hostile_report.is_file()


def test_no_text_from_the_config_reaches_the_report(hostile_report):
    report = hostile_report
    html = report.read_text(encoding="utf-8")
    for name, text in HOSTILE.items():
        assert text not in html and json.dumps(text)[1:-1] not in html, name
    assert "alert(" not in html
    figures = [entry for entry in report_results(report).values() if entry["job_properties"]["rule"] == "figures"]
    assert figures and all("sha256:" in entry["job_properties"]["params"] for entry in figures)


def test_every_caption_renders_without_a_docutils_warning_and_names_its_run(hostile_report):
    """The captions use the rules' own wildcards (run for training and figures, system for evaluation): no
    "Inline strong start-string without end-string" box, and each per-model caption names its model."""
    report = hostile_report
    results = report_results(report)
    assert len(results) >= 10
    named = 0
    for path, entry in results.items():
        caption = entry["caption"]
        assert "system-message" not in caption and "problematic" not in caption, (path, caption)
        assert "**" not in caption and "{{" not in caption, (path, caption)
        wildcards = dict(item.split("=", 1) for item in entry["job_properties"]["wildcards"].split(", ") if item)
        for key in ("run", "system"):
            if key in wildcards:
                assert f"<strong>{wildcards[key]}</strong>" in caption, (path, caption)
                named += 1
    assert named >= 10


def test_opening_the_report_runs_nothing_from_the_config(hostile_report):
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    report = hostile_report
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.route("**/*", lambda route: route.abort() if not route.request.url.startswith(("file:", "data:"))
                       else route.continue_())
            page.goto(report.as_uri(), wait_until="load")
            page.wait_for_timeout(500)
            # the report's own script ran (its results parsed) and rendered its page
            assert page.evaluate("typeof results === 'object' && Object.keys(results).length") >= 10
            assert page.locator("body").inner_text().strip()
            assert dialogs == []
            assert page.evaluate("document.querySelectorAll('[id^=hostile], img[src=x], [onerror], [onload]')"
                                 ".length") == 0
        finally:
            browser.close()
