"""End to end against the real argilla-server 2.8 (own venv, SQLite), the real SDK and the real UI.

The server's virtualenv is created on first use and cached in ~/.cache/curate/argilla-server
(about a minute, once); each run starts one server (~10 s) on a free port with a fresh
database under tmp. The UI test drives Debian's chromium headless through selenium and saves
screenshots under test-artifacts/.
"""

from __future__ import annotations

import json
import shutil
import socket
import stat
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from curate.argilla.errors import ArgillaError, NothingSubmittedError
from curate.argilla.pull import pull
from curate.argilla.push import push
from curate.argilla.server import start_server
from curate.config import SourceConfig
from curate.errors import StageError
from curate.formats import read_source
from curate.pipeline import RunSummary, run_pipeline
from curate.stats import StageStats
from curate.store import Store

rg = pytest.importorskip("argilla", reason="the argilla extra is not installed")

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(argilla_server):
    """The session's running local Argilla (tests/conftest.py): url, owner API key, port, handle, data dir."""
    return argilla_server


@pytest.fixture(scope="module")
def store(tmp_path_factory, shared_data) -> Store:
    """A store with ``prefs@0``: 6 HH-RLHF pairs and 4 LLaMA-Factory DPO demo pairs."""
    frames = [
        read_source(SourceConfig(path="hh_rlhf/test.jsonl.gz", format="hh_rlhf"), base_dir=shared_data).valid.head(6),
        read_source(
            SourceConfig(path="llamafactory_demo/dpo_en_demo.json", format="sharegpt_preference"), base_dir=shared_data
        ).valid.head(4),
    ]
    rows = pl.concat(frames).with_columns(split=pl.lit("train"))
    store = Store(tmp_path_factory.mktemp("store"))
    convert = StageStats(
        stage="convert", name="convert", rows_in=rows.height, rows_added=0, rows_kept=rows.height, rows_removed=0
    )
    empty = rows.clear().with_columns(
        removed_by=pl.lit(None, pl.String), reason=pl.lit(None, pl.String), detail=pl.lit(None, pl.String)
    )
    store.commit("prefs", kind="preference", kept=rows, removed=empty.drop("split"), stages=[convert], lineage={})
    return store


def _owner(server) -> rg.Argilla:
    return rg.Argilla(api_url=server["url"], api_key=server["api_key"])


def _annotator(client: rg.Argilla, name: str) -> tuple[str, str]:
    """Create an annotator in workspace `argilla`; returns (password, api key)."""
    password = f"{name}-password"
    user = rg.User(username=name, password=password, role="annotator", client=client).create()
    client.workspaces("argilla").add_user(user)
    api_key = client.http_client.get(f"/api/v1/users/{user.id}").json()["api_key"]  # the SDK hides it
    return password, api_key


def test_push_twice_creates_no_duplicates(server, store):
    first = push(store, "prefs@0", api_url=server["url"], api_key=server["api_key"], dataset="dupes")
    second = push(store, "prefs", api_url=server["url"], api_key=server["api_key"], dataset="dupes")
    assert (first.created, first.existing, first.dataset_created) == (10, 0, True)
    assert (second.created, second.existing, second.dataset_created) == (0, 10, False)
    records = list(_owner(server).datasets("dupes", workspace="argilla").records)
    assert sorted(r.id for r in records) == sorted(store.kept("prefs@0")["id"].to_list())


def test_pull_with_nothing_submitted_commits_nothing(server, store):
    push(store, "prefs@0", api_url=server["url"], api_key=server["api_key"], dataset="untouched")
    with pytest.raises(
        NothingSubmittedError,
        match=r"Nobody has submitted an answer in the Argilla dataset 'untouched' yet \(10 records",
    ):
        pull(store, "untouched", into="untouched-labeled", api_url=server["url"], api_key=server["api_key"])
    assert "untouched-labeled" not in store.names()


def test_server_down_is_a_clear_error(store):
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(
        ArgillaError, match=f"No Argilla server answers at {url}. Start one with `curate argilla serve`"
    ):
        push(store, "prefs@0", api_url=url, api_key="whatever")


def test_serve_refuses_a_taken_port(server, tmp_path):
    with pytest.raises(
        ArgillaError, match=f"Port {server['port']} on 127.0.0.1 is already in use by an Argilla 2.8.0 server"
    ):
        start_server(port=server["port"], data_dir=tmp_path, api_key="k" * 12, password="p" * 12)


def test_server_files_are_readable_by_their_owner_only(server):
    """The database holds the owner's API key in plain text."""
    data = server["data_dir"]
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (data, data / "argilla.db", server["handle"].log_file)}
    assert modes == {"data": 0o700, "argilla.db": 0o600, f"server-{server['port']}.log": 0o600}


def test_serve_api_key_flag_warns_that_process_lists_show_it(server, tmp_path):
    from typer.testing import CliRunner

    from curate.cli import app

    args = ["argilla", "serve", "--port", str(server["port"]), "--data-dir", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--api-key", "flag-key-1234", "--password", "flag-pw-5678"])

    assert isinstance(result.exception, ArgillaError) and "already in use" in str(result.exception)  # port taken
    output = " ".join(result.output.split())
    assert "--api-key is visible to other users in process lists (ps); prefer setting ARGILLA_API_KEY" in output
    assert "--password is visible to other users in process lists (ps); prefer setting ARGILLA_PASSWORD" in output
    assert "flag-key-1234" not in output and "flag-pw-5678" not in output


def _submit_in_browser(url: str, dataset_id: str, username: str, password: str, submitted: Callable[[], bool]) -> None:
    """Sign in through the real sign-in page, pick "Response B", write a rationale, Submit."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from helpers import headless_chromium

    shutil.rmtree(ARTIFACTS / "chromium-profile", ignore_errors=True)
    driver = headless_chromium(ARTIFACTS / "chromium-profile")
    try:
        wait = WebDriverWait(driver, 60)
        driver.get(f"{url}/sign-in")
        wait.until(ec.presence_of_element_located((By.NAME, "Username"))).send_keys(username)
        driver.find_element(By.NAME, "Password").send_keys(password)
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(lambda d: "sign-in" not in d.current_url)
        driver.get(f"{url}/dataset/{dataset_id}/annotation-mode")
        wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "label[for=preference_b]"))).click()
        rationale = driver.find_elements(By.CSS_SELECTOR, "textarea, [contenteditable=true]")
        if rationale:
            rationale[0].click()
            rationale[0].send_keys("B answers the question.")
        driver.save_screenshot(str(ARTIFACTS / "argilla-annotation-before-submit.png"))
        wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "button.button--submit"))).click()
        wait.until(lambda _: submitted())  # the server has the response
        wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "body"), "Submitted"))
        driver.save_screenshot(str(ARTIFACTS / "argilla-annotation-after-submit.png"))
    finally:
        driver.save_screenshot(str(ARTIFACTS / "argilla-annotation-last.png"))
        driver.quit()
        shutil.rmtree(ARTIFACTS / "chromium-profile", ignore_errors=True)


@pytest.mark.slow
@pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="Debian chromium + chromium-driver are not installed (.ci/run installs them)",
)
def test_annotators_via_rest_and_ui_become_a_new_version(server, store):
    ARTIFACTS.mkdir(exist_ok=True)
    url, key = server["url"], server["api_key"]
    push(store, "prefs@0", api_url=url, api_key=key, dataset="prefs-ab")
    owner = _owner(server)
    ds = owner.datasets("prefs-ab", workspace="argilla")
    _, rest_key = _annotator(owner, "rest-annotator")
    ui_password, _ = _annotator(owner, "ui-annotator")

    # The REST annotator works like the UI does: /me queue search, then one response per record.
    import httpx

    rest = httpx.Client(base_url=url, headers={"X-Argilla-Api-Key": rest_key})
    plan = [
        ("a", "submitted", ""),
        ("b", "submitted", "more helpful"),
        ("tie", "submitted", ""),
        ("both_bad", "submitted", ""),
        (None, "discarded", ""),
        ("a", "draft", ""),
    ]
    votes: dict[str, list[tuple[str, str | None, str]]] = defaultdict(list)  # row id -> (who, value, status)
    shown: dict[str, dict] = {}  # row id -> the fields the annotator saw
    for value, status, why in plan:
        pending = [
            {"type": "terms", "scope": {"entity": "response", "property": "status"}, "values": ["pending"]},
            {"type": "terms", "scope": {"entity": "record", "property": "status"}, "values": ["pending"]},
        ]
        found = rest.post(
            f"/api/v1/me/datasets/{ds.id}/records/search", params={"limit": 1}, json={"filters": {"and": pending}}
        )
        assert found.status_code == 200, found.text
        record = found.json()["items"][0]["record"]
        values = (
            {} if value is None else {"preference": {"value": value}, **({"rationale": {"value": why}} if why else {})}
        )
        reply = rest.post(f"/api/v1/records/{record['id']}/responses", json={"values": values, "status": status})
        assert reply.status_code == 201, reply.text
        votes[record["external_id"]].append(("rest-annotator", value, status))
        shown[record["external_id"]] = record["fields"]
    assert rest.get(f"/api/v1/datasets/{ds.id}/records").status_code == 403  # annotators only get /me/...

    ui_user = str(owner.users("ui-annotator").id)

    def ui_answers() -> list[tuple[dict, dict]]:
        listing = owner.http_client.get(
            f"/api/v1/datasets/{ds.id}/records", params={"include": "responses", "limit": 100}
        )
        return [
            (r, resp)
            for r in listing.json()["items"]
            for resp in r.get("responses") or []
            if resp["user_id"] == ui_user
        ]

    _submit_in_browser(url, str(ds.id), "ui-annotator", ui_password, submitted=lambda: bool(ui_answers()))
    [(record, response)] = ui_answers()  # the UI may be served a record the REST annotator drafted or discarded
    assert response["status"] == "submitted" and response["values"]["preference"] == {"value": "b"}
    assert response["values"]["rationale"] == {"value": "B answers the question."}
    votes[record["external_id"]].append(("ui-annotator", "b", "submitted"))
    shown[record["external_id"]] = record["fields"]

    result = pull(store, "prefs-ab", into="prefs-labeled", api_url=url, api_key=key)

    final = {rid: [(who, v) for who, v, st in vs if st == "submitted"] for rid, vs in votes.items()}
    picked = {rid: shown[rid][f"response_{v[0][1]}"] for rid, v in final.items() if v and v[0][1] in ("a", "b")}
    discarded = [rid for rid, vs in votes.items() if not final[rid] and any(st == "discarded" for _, _, st in vs)]
    answered = sum(1 for rid in votes if final[rid] or rid in discarded)
    assert (result.answered, result.pending, result.kept) == (answered, 10 - answered, 3)
    assert result.removed_by_reason == {"both_bad": 1, "tie": 1, **({"discarded": 1} if discarded else {})}
    kept = store.kept(f"prefs-labeled@{result.version}")
    who = Counter()
    for row in kept.iter_rows(named=True):
        argilla = json.loads(row["meta"])["argilla"]
        assert argilla["agreement"] == 1.0 and argilla["dataset"] == "prefs-ab"
        who[argilla["annotators"][0]] += 1
        assert row["split"] == "train"
    assert who == {"rest-annotator": 2, "ui-annotator": 1}
    # exactly the submitted pairs, each with the side the annotator picked as chosen
    assert sorted(r["chosen"][-1]["content"] for r in kept.iter_rows(named=True)) == sorted(picked.values())
    pushed = {r["id"]: r for r in store.kept("prefs@0").iter_rows(named=True)}
    for rid, text in picked.items():
        other = [m for side in ("chosen", "rejected") for m in pushed[rid][side] if m["content"] != text]
        assert any(r["rejected"] == other for r in kept.iter_rows(named=True))
    info = store.info("prefs-labeled")
    assert info.lineage["parents"] == [{"dataset": "prefs", "version": 0, "rows": answered}]
    assert info.lineage["argilla"]["dataset"] == "prefs-ab" and info.lineage["argilla"]["pending"] == 10 - answered
    assert [(s.stage, s.rows_in, s.rows_kept, s.rows_removed) for s in info.stages] == [
        ("convert", answered, answered, 0),
        ("label", answered, 3, answered - 3),
    ]
    assert (ARTIFACTS / "argilla-annotation-after-submit.png").stat().st_size > 10_000


def _pipeline(tmp_path: Path, *, dataset: str = "staged", output: str = "prefs-staged") -> Path:
    path = tmp_path / "label.yaml"
    path.write_text(f"source: {{path: prefs@0}}\nstages:\n  - label: {{dataset: {dataset}}}\noutput: {output}\n")
    return path


def _run_label_stage_twice(server, store: Store, pipeline: Path, *, dataset: str) -> tuple[RunSummary, dict]:
    """Run 1 pushes; the owner answers two records over REST (``a``, ``tie``); run 2 commits.

    Returns the second run's summary and the record answered ``a``.
    """
    env = {"ARGILLA_API_URL": server["url"], "ARGILLA_API_KEY": server["api_key"]}
    with pytest.raises(
        NothingSubmittedError, match=f"10 new pairs pushed to Argilla dataset '{dataset}'.*Nothing was committed"
    ):
        run_pipeline(pipeline, store_root=store.root, env=env)

    owner = _owner(server)
    ds = owner.datasets(dataset, workspace="argilla")
    first, second = owner.http_client.get(f"/api/v1/datasets/{ds.id}/records", params={"limit": 2}).json()["items"]
    for record, value in ((first, "a"), (second, "tie")):
        reply = owner.http_client.post(
            f"/api/v1/records/{record['id']}/responses",
            json={"values": {"preference": {"value": value}}, "status": "submitted"},
        )
        assert reply.status_code == 201, reply.text
    return run_pipeline(pipeline, store_root=store.root, env=env), first


def test_label_stage_without_environment_names_the_url_and_how_to_pass_it(store, tmp_path):
    with pytest.raises(
        StageError,
        match=r"needs an Argilla API key for http://127\.0\.0\.1:6900 \(from the default\): the runner passed no "
        r"environment to the stages: call run_pipeline\(\.\.\., env=os\.environ\)",
    ):
        run_pipeline(_pipeline(tmp_path), store_root=store.root, env={})


def test_label_stage_pushes_first_then_keeps_answered_pairs(server, store, tmp_path):
    summary, first = _run_label_stage_twice(server, store, _pipeline(tmp_path), dataset="staged")

    label = summary.stages[-1]
    assert (label.stage, label.rows_in, label.rows_kept) == ("label", 10, 1)
    assert label.removed_by_reason == {"awaiting_annotation": 8, "tie": 1}
    [row] = store.kept(f"prefs-staged@{summary.version}").iter_rows(named=True)
    assert row["chosen"][-1]["content"] == first["fields"]["response_a"]
    assert json.loads(row["meta"])["argilla"]["annotators"] == ["argilla"]


def test_label_pull_reads_a_dataset_the_label_stage_filled(server, store, tmp_path):
    """The stage's records carry their rows: `label pull` rebuilds them from Argilla, into any store."""
    from typer.testing import CliRunner

    from curate.cli import app

    pipeline = _pipeline(tmp_path, dataset="staged-pull", output="prefs-staged-pull")
    staged, _ = _run_label_stage_twice(server, store, pipeline, dataset="staged-pull")
    elsewhere = Store(tmp_path / "elsewhere")  # holds no version the records came from
    env = {"ARGILLA_API_URL": server["url"], "ARGILLA_API_KEY": server["api_key"]}
    args = ["label", "pull", "staged-pull", "--into", "pulled", "--store", str(elsewhere.root)]

    result = CliRunner().invoke(app, args, env=env)

    assert result.exit_code == 0, result.output
    assert "1 pairs kept, removed: tie 1; 2 records answered, 8 still pending" in " ".join(result.output.split())
    assert_frame_equal(elsewhere.kept("pulled"), store.kept(f"prefs-staged-pull@{staged.version}"))
    ties = elsewhere.read("pulled").filter(pl.col("reason") == "tie")
    assert (
        ties.select("id", "split").rows()
        == store.read(f"prefs-staged-pull@{staged.version}")
        .filter(pl.col("reason") == "tie")
        .select("id", "split")
        .rows()
    )
    info = elsewhere.info("pulled")
    assert info.lineage["parents"] == []
    assert info.lineage["argilla"]["sources"] == {"pipeline:prefs-staged-pull": 2}


def test_ranking_question_with_judge_suggestions_round_trips(server, store):
    rows = store.kept("prefs@0").with_columns(margin=pl.lit(2.0))  # a judge preferred `chosen` by 2.0
    convert = StageStats(stage="convert", name="convert", rows_in=10, rows_added=0, rows_kept=10, rows_removed=0)
    removed = rows.clear().drop("split").with_columns(removed_by=pl.lit(""), reason=pl.lit(""), detail=pl.lit(""))
    store.commit("judged", kind="preference", kept=rows, removed=removed, stages=[convert], lineage={})
    url, key = server["url"], server["api_key"]
    push(store, "judged", api_url=url, api_key=key, dataset="ranked", question="ranking")

    owner = _owner(server)
    ds = owner.datasets("ranked", workspace="argilla")
    records = owner.http_client.get(
        f"/api/v1/datasets/{ds.id}/records", params={"include": "suggestions", "limit": 100}
    ).json()["items"]
    record = records[0]
    [suggestion] = record["suggestions"]
    chosen_side = "a" if record["metadata"]["a_is"] == "chosen" else "b"
    assert suggestion["value"][0]["value"] == chosen_side  # the SDK sends ranking suggestions as an order, no ranks
    assert suggestion["score"][0] == pytest.approx(0.8808, abs=1e-4)  # sigmoid(2.0)
    # B ranked first, stored in A-first order: the SDK would read this as "A first"
    ranking = [{"value": "a", "rank": 2}, {"value": "b", "rank": 1}]
    reply = owner.http_client.post(
        f"/api/v1/records/{record['id']}/responses",
        json={"values": {"preference": {"value": ranking}}, "status": "submitted"},
    )
    assert reply.status_code == 201, reply.text

    result = pull(store, "ranked", into="ranked-labeled", api_url=url, api_key=key)

    [row] = store.kept(f"ranked-labeled@{result.version}").iter_rows(named=True)
    assert row["chosen"][-1]["content"] == record["fields"]["response_b"]
    assert row["margin"] == (2.0 if chosen_side == "b" else None)


def test_label_push_command_reads_url_and_key_from_the_environment(server, store):
    from typer.testing import CliRunner

    from curate.cli import app

    env = {"ARGILLA_API_URL": server["url"], "ARGILLA_API_KEY": server["api_key"]}
    args = ["label", "push", "prefs@0", "--store", str(store.root), "--dataset-name", "from-cli"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "10 new records, 0 already there" in " ".join(result.output.split())


def test_label_push_api_key_flag_works_and_warns_that_process_lists_show_it(server, store):
    from typer.testing import CliRunner

    from curate.cli import app

    args = ["label", "push", "prefs@0", "--store", str(store.root), "--dataset-name", "from-flag"]
    result = CliRunner().invoke(app, [*args, "--api-url", server["url"], "--api-key", server["api_key"]], env={})

    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "10 new records, 0 already there" in output
    assert "--api-key is visible to other users in process lists (ps); prefer setting ARGILLA_API_KEY" in output
    assert server["api_key"] not in output
