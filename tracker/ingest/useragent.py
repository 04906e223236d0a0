"""User-agent enrichment (ua-parser) and the bot filter (crawlerdetect plus headless markers).

Both are cached per user-agent string: a batch shares one UA, and real traffic repeats a few
thousand UAs, so the regex work happens once per distinct string.
"""

from __future__ import annotations

import re
from functools import lru_cache

from crawlerdetect import CrawlerDetect
from ua_parser import parse

# Automation and headless browsers that crawler lists do not always name.
_HEADLESS = re.compile(
    r"headless|phantomjs|slimerjs|puppeteer|playwright|selenium|webdriver|lighthouse|"
    r"pagespeed|pingdom|uptimerobot|jsdom|electron/\S+ .*\bbot\b|cypress|nightmare",
    re.IGNORECASE,
)
_TABLET = re.compile(r"ipad|tablet|kindle|silk/|playbook|nexus (7|9|10)|sm-t\d", re.IGNORECASE)
_MOBILE = re.compile(r"mobi|iphone|ipod|android.+mobile|windows phone|blackberry", re.IGNORECASE)

_detector = CrawlerDetect()


@lru_cache(maxsize=8192)
def is_bot(user_agent: str) -> bool:
    if not user_agent.strip():
        return True  # every browser sends a user agent
    if _HEADLESS.search(user_agent):
        return True
    return bool(_detector.isCrawler(user_agent))


@lru_cache(maxsize=8192)
def describe(user_agent: str) -> tuple[str, str, str]:
    """(browser family, os family, device type) with device in desktop | mobile | tablet."""
    if not user_agent:
        return "", "", "desktop"
    result = parse(user_agent)
    browser = result.user_agent.family if result.user_agent else ""
    os_name = result.os.family if result.os else ""
    family = result.device.family if result.device else ""
    if browser == "Other":
        browser = ""
    if os_name == "Other":
        os_name = ""
    if family == "iPad" or _TABLET.search(user_agent):
        device = "tablet"
    elif os_name == "Android" and "mobile" not in user_agent.lower():
        device = "tablet"  # Android tablets leave "Mobile" out of their UA
    elif _MOBILE.search(user_agent) or os_name in ("iOS", "Android") or family == "iPhone":
        device = "mobile"
    else:
        device = "desktop"
    return browser[:64], os_name[:64], device
