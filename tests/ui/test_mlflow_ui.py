"""The MLflow UI over a real study's store, in a real headless Chromium.

A small real study (``yct tune``: LTH and CS, 4 trials) writes a SQLite store; ``mlflow ui``
serves it on a free port; Chromium (Debian's, driven by Selenium) checks what a user comparing
fronts sees: the study's parent run with its trials and the baseline under it by readable
names and the data they used, ``tags.pareto = 'true'`` showing exactly the front, the parent's ``front.png`` and
``front.html`` rendered (the page's points answer a hover with the trial), a trial's logged
model. Screenshots go to ``$YCT_UI_SHOTS`` (``make ui-check``: ``bench/results/ui/``), else
the test's folder. Without Chromium the test is skipped and says how to install it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import ray
import yaml

from tests.ui.mlflow_browser import body_text, chromium, missing, mlflow_ui, wait_for
from yct.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.skipif(missing() is not None, reason=str(missing()))]


@pytest.fixture(scope="module")
def study_store(tmp_path_factory, demo_spec):
    folder = tmp_path_factory.mktemp("ui_study")
    space = {
        "method": ["lth", "cs"], "model": "yolov3-tiny", "data": str(demo_spec),
        "objectives": [{"metric": "map50", "mode": "max"}, {"metric": "macs", "mode": "min"}],
        "fixed": {"width": 0.25, "img_size": 64, "epochs": 1, "batch_size": 8,
                  "rewind_epoch": 0, "latency_runs": 0, "warmup_epochs": 0.0},
        "space": {"lr0": {"type": "loguniform", "low": 1e-3, "high": 1e-2},
                  "lth": {"rate": {"type": "float", "low": 0.2, "high": 0.6},
                          "rounds": {"type": "int", "low": 1, "high": 1}},
                  "cs": {"penalty": {"type": "loguniform", "low": 1e-5, "high": 1e-3},
                         "rounds": {"type": "int", "low": 1, "high": 1}}},
        "search": {"sampler": "nsga2", "num_samples": 4, "max_concurrent": 2, "seed": 0},
        "resources": {"cpu": 1, "gpu": 0},
    }  # fmt: skip
    (folder / "space.yaml").write_text(yaml.safe_dump(space))
    store = f"sqlite:///{folder / 'mlruns.db'}"
    try:
        assert main(["tune", str(folder / "space.yaml"), "--name", "ui", "--storage",
                     str(folder / "runs"), "--mlflow-uri", store]) == 0  # fmt: skip
    finally:
        ray.shutdown()
    return store, folder


def test_comparing_fronts_in_the_mlflow_ui(study_store) -> None:
    from mlflow.tracking import MlflowClient
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    store, folder = study_store
    shots = Path(os.environ.get("YCT_UI_SHOTS") or folder / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("ui").experiment_id
    runs = client.search_runs([experiment])
    (parent,) = [r for r in runs if r.data.tags.get("kind") == "study"]
    trials = [r for r in runs if r.data.tags.get("kind") == "trial"]
    front = [r for r in trials if r.data.tags["pareto"] == "true"]
    assert len(trials) == 4 and front
    with mlflow_ui(store, folder / "mlflow_ui.log") as base, chromium() as driver:
        # the study: its parent run, and under it the baseline and every trial by name
        driver.get(f"{base}/#/experiments/{experiment}/runs")
        wait_for(driver, lambda d: "ui (study)" in body_text(d), "the study's parent run")
        driver.find_element(By.CSS_SELECTOR,
                            "button[data-component-id*='runnamecellrenderer']").click()  # fmt: skip
        names = [r.info.run_name for r in trials] + ["baseline-yolov3-tiny"]
        wait_for(driver, lambda d: all(n in body_text(d) for n in names), "the nested runs")
        # the data each run used, in the runs table's Dataset column
        dataset = trials[0].inputs.dataset_inputs[0].dataset.name
        wait_for(driver, lambda d: f"{dataset} (" in body_text(d), "the runs' dataset")
        driver.save_screenshot(str(shots / "1_study_runs.png"))
        for trial in trials:  # readable: method, what it drew, the trial id
            name = trial.info.run_name
            assert name.startswith(trial.data.tags["method"] + "-")
            assert name.endswith(trial.data.tags["trial_id"])
        # filtering on the pareto tag shows exactly the front (under its study's parent)
        search = driver.find_element(By.CSS_SELECTOR, "input[placeholder*='metrics.']")
        search.send_keys("tags.pareto = 'true'", Keys.ENTER)
        off_front = [r.info.run_name for r in trials if r not in front]
        wait_for(driver, lambda d: f"{len(front) + 1} matching runs" in body_text(d)
                 and not any(n in body_text(d) for n in off_front), "the front alone")  # fmt: skip
        assert all(r.info.run_name in body_text(driver) for r in front)
        driver.save_screenshot(str(shots / "2_pareto_filter.png"))
        # the parent's front files render: the plot as an image, the page as a live plot
        driver.get(f"{base}/#/experiments/{experiment}/runs/{parent.info.run_id}/artifacts/"
                   "pareto/front.png")  # fmt: skip
        image = wait_for(driver, lambda d: [i for i in d.find_elements(By.TAG_NAME, "img")
                                            if (i.get_property("naturalWidth") or 0) >= 600],
                         "front.png drawn")  # fmt: skip
        assert image
        driver.save_screenshot(str(shots / "3_front_png.png"))
        driver.find_element(By.XPATH, "//*[text()='front.html']").click()
        frame = wait_for(driver, lambda d: d.find_elements(By.TAG_NAME, "iframe"), "front.html")
        driver.switch_to.frame(frame[0])
        points = wait_for(driver, lambda d: d.find_elements(
            By.CSS_SELECTOR, ".scatterlayer .trace .points path"), "the page's points")  # fmt: skip
        assert len(points) >= len(trials)  # every trial, and the starting model
        ActionChains(driver).move_to_element(points[0]).perform()
        hover = wait_for(driver, lambda d: [h.text for h in d.find_elements(
            By.CSS_SELECTOR, ".hoverlayer .hovertext") if h.text], "a hover text")  # fmt: skip
        assert any(n in hover[0] for n in names) and "method:" in hover[0]
        driver.switch_to.default_content()
        driver.save_screenshot(str(shots / "4_front_html_hover.png"))
        # a front trial's run page lists its logged model
        best = front[0]
        driver.get(f"{base}/#/experiments/{experiment}/runs/{best.info.run_id}")
        wait_for(driver, lambda d: best.data.tags["model_id"] in body_text(d)
                 and "Logged models" in body_text(d), "the trial's logged model")  # fmt: skip
        # the screenshot shows the section (its heading's own text node may hold a count)
        heading = driver.find_elements(By.XPATH, "//*[contains(text(), 'Logged models')]")
        if heading:
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", heading[0])
        driver.save_screenshot(str(shots / "5_trial_logged_model.png"))
