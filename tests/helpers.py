"""Small builders shared by the core tests (real files under tmp_path, no mocks)."""

from __future__ import annotations

import json
from pathlib import Path

SUPPORT_ROWS = [
    {"instruction": "Where is my order 1234?", "response": "It left our warehouse today and arrives Friday.", "category": "ORDER"},
    {"instruction": "Where is my order 1234?", "response": "It left our warehouse today and arrives Friday.", "category": "ORDER"},
    {"instruction": "WHERE is my   order 1234?", "response": "It left our warehouse today and arrives Friday.", "category": "ORDER"},
    {"instruction": "I want a refund for the blue kettle", "response": "I have started the refund; expect it in 5 days.", "category": "REFUND"},
    {"instruction": "Can I get my money back?", "response": "Yes, refunds take 5 business days.", "category": "REFUND"},
    {"instruction": "Please change my address to Leeds", "response": "Done: your address is now Leeds.", "category": "ACCOUNT"},
    {"instruction": "How do I reset my password?", "response": "Use the 'Forgot password' link on the sign-in page.", "category": "ACCOUNT"},
    {"instruction": "My card was charged twice", "response": "I see two charges; the duplicate is reversed.", "category": "PAYMENT"},
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_pipeline(folder: Path, *, source: str = "data.jsonl", output: str = "support", stages: str | None = None, extra_source: str = "") -> Path:
    stages = stages if stages is not None else (
        "  - dedup_exact: {}\n  - split: {test: 0.25, validation: 0.25, stratify_by: label, seed: 0}\n"
    )
    text = (
        "name: support\n"
        "source:\n"
        f"  path: {source}\n"
        "  format: table\n"
        "  mapping: {user: instruction, assistant: response, label: category}\n"
        f"{extra_source}"
        "stages:\n"
        f"{stages}"
        f"output: {output}\n"
    )
    path = folder / "pipeline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)


def headless_chromium(profile: Path, *, logs: bool = False):
    """Debian's chromium driven by selenium, headless, with its profile in ``profile`` (caller quits it).

    ``logs`` records the browser console and the performance (CDP network) log for ``get_log``.
    """
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    if logs:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
