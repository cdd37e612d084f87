"""docs/report.png: a screenshot of ``codesign report``'s page in headless Chromium, a front design
clicked (its tooltip and its detail panel shown).

    codesign search --budget 32 --out runs/r32          # writes runs/r32/report.html
    python3 docs/report_screenshot.py runs/r32/report.html docs/report.png

Needs selenium and the Debian packages chromium + chromium-driver."""
from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path


def screenshot(report_html: Path, png: Path, width_px: int = 1300, height_px: int = 1500) -> Path:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={width_px},{height_px}"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=opts)
    try:
        driver.get(Path(report_html).resolve().as_uri())
        time.sleep(2)
        # hide the 3-D plot and the hypervolume for the picture: the 2-D front, the detail panel, the table
        driver.execute_script("for (const id of ['pareto-3d', 'hypervolume']) {"
                              " const e = document.getElementById(id); e.style.display = 'none';"
                              " let h = e.parentElement.previousElementSibling;"
                              " while (h && h.tagName !== 'H2') h = h.previousElementSibling;"
                              " if (h) { h.style.display = 'none'; const n = h.nextElementSibling;"
                              "  if (n && n.classList.contains('note')) n.style.display = 'none'; } }")
        points = driver.find_elements(By.CSS_SELECTOR, "#pareto-2d g.tracefront-lat path.point")
        target = points[len(points) // 2]
        ActionChains(driver).move_to_element(target).click().perform()
        time.sleep(1.0)
        driver.execute_script("document.getElementById('detail').scrollIntoView({block: 'start'});"
                              "window.scrollBy(0, -document.getElementById('pareto-2d').offsetHeight - 60);")
        ActionChains(driver).move_to_element(target).perform()
        time.sleep(0.8)
        png = Path(png)
        png.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(png))
        return png
    finally:
        driver.quit()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python3 docs/report_screenshot.py REPORT.html OUT.png")
    print(screenshot(Path(sys.argv[1]), Path(sys.argv[2])))
