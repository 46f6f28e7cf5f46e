"""The page of `digitdet serve` in a real headless Chromium (Debian's `chromium` + `chromium-driver`, driven
by selenium with the system chromedriver): upload a photo, wait for the number, check it is the API's
reading and that the boxes were drawn, and keep a screenshot. Skipped only when no Chromium is installed
(.ci/run installs it, so CI runs it)."""

import shutil
import warnings
from pathlib import Path

import httpx
import pytest
from PIL import Image

from digitdet.reading.reader import Reader
from digitdet.serve import create_app
from digitdet.serve.server import LOOPBACK_HOSTS, background
from tiny import ROOT, train_tiny

REAL_PHOTO = ROOT.parent / "shared" / "real_plaques" / "images" / "2.jpg"
BROWSER = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
DRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(not (BROWSER and DRIVER),
                                reason="no chromium/chromedriver installed (apt-get install chromium chromium-driver)")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data, ckpt = train_tiny(tmp_path_factory.mktemp("browser"))
    # read_thresh 0: the tiny model then always reads *something* (a number and boxes to check).
    reader = Reader(ckpt, overrides=("predict.read_thresh=0.0",))
    # As `digitdet serve` runs on loopback: only this machine's Host names are answered.
    with background(create_app(reader, workers=1, queue=4, allowed_hosts=LOOPBACK_HOSTS)) as url:
        yield url, data


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1000,1100"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def photo(server, tmp_path) -> Path:
    """A real plaque photo (from ../shared, made small for the tiny model's time) or a synthetic one."""
    _, data = server
    src = REAL_PHOTO if REAL_PHOTO.is_file() else data / "test" / "1.png"
    img = Image.open(src).convert("RGB")
    img.thumbnail((240, 240))
    path = tmp_path / f"house{src.suffix}"
    img.save(path)
    return path


def _wait_read(driver, timeout=120) -> str:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        lambda d: d.find_element("id", "result").get_attribute("data-state") in ("done", "error"))
    return driver.find_element("id", "result").get_attribute("data-state")


def test_upload_shows_the_number_and_the_boxes(server, browser, photo, tmp_path):
    url, _ = server
    api = httpx.post(url + "read", files={"image": (photo.name, photo.read_bytes())}, timeout=120).json()
    assert api["number"] and api["digits"]

    browser.get(url)
    assert browser.find_element("id", "result").get_attribute("data-state") == "idle"
    browser.find_element("id", "file").send_keys(str(photo))
    assert _wait_read(browser) == "done", browser.find_element("id", "status").text

    assert browser.find_element("id", "number").text == api["number"]
    assert browser.find_element("id", "confidence").text == f"{round(api['confidence'] * 100)} % confidence"
    assert int(browser.find_element("id", "result").get_attribute("data-boxes")) == len(api["digits"])
    # The boxes are on the canvas: pixels of the box colour (#00e07a), which the photo itself lacks.
    green = browser.execute_script("""
        const c = document.getElementById('view');
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < px.length; i += 4) {
          if (px[i] < 30 && px[i + 1] > 200 && px[i + 2] > 100 && px[i + 2] < 150) n++;
        }
        return [c.width, c.height, n];""")
    width, height, n_green = green
    assert width > 0 and height > 0 and n_green > 50
    assert browser.find_element("id", "model").text.startswith("model ")

    shot = tmp_path / "page.png"
    assert browser.save_screenshot(str(shot)) and Image.open(shot).size[0] > 0
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe  # no failed loads, no CSP violations, no script errors


def test_a_bad_file_shows_the_servers_error(server, browser, tmp_path):
    url, _ = server
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    browser.get(url)
    browser.find_element("id", "file").send_keys(str(bad))
    assert _wait_read(browser) == "error"
    status = browser.find_element("id", "status")
    assert "notes.jpg" in status.text and "not an image" in status.text and status.get_attribute("class") == "error"
    assert not browser.find_element("id", "result").is_displayed()
