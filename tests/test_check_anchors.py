"""`edge check` warnings: templates the anchor a backend's profile follows would route
differently (issue 12 item 19), found on real descriptor sets, and the template-overlap
search behind the grpc-gateway ordering warnings."""
from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from edge.cli import _check
from edge.config import GatewayConfig
from transcoding.matcher import NoRoute, PathMatcher
from transcoding.options import TranscodingOptions
from transcoding.overlap import example_overlap
from transcoding.template import parse_template

ROOT = Path(__file__).resolve().parent.parent
PATHS_SET = ROOT / "protos" / "compatpaths" / "descriptors.binpb"
DEMO_SET = ROOT / "protos" / "edgedemo" / "descriptors.binpb"

# (template a, template b, overlap when '**' may be empty anywhere?, when only at the end?)
OVERLAPS = [
    ("/v1/users/me", "/v1/users/{id}", True, True),
    ("/a/*/c", "/a/b/*", True, True),
    ("/a/b", "/a/c", False, False),
    ("/a/b", "/a/b/c", False, False),
    ("/a/**/c", "/a/*/**", True, True),
    ("/a/**/b", "/a/b", True, False),  # only if '**' matches nothing before 'b'
    ("/a/**/b", "/a/**/c", False, False),
    ("/a/**/b/c", "/a/**/c", True, True),
    ("/a/**", "/b/**", False, False),
    ("/**", "/", True, True),
    ("/**", "/a/b/c", True, True),
    ("/v1/{name=files/**}/contents", "/v1/{n=**}", True, True),
    ("/n/{x=**}/{y}", "/n/{x=**}/k/{y}", True, True),
    ("/p/**/*/q", "/p/x/**", True, True),
    ("/x:v", "/y:v", False, False),
    ("/x:v", "/x:w", False, False),
    ("/*:v", "/x:v", True, True),
    # A verb template and one without: the latter's last segment must take ':verb' as data.
    ("/things/{id}:act", "/things/{id}", True, True),
    ("/things/{id}:act", "/things/x", False, False),  # a literal never holds ':'
    ("/{x=**}:archive", "/files/{path=**}", True, True),
    ("/{x=**}/tail:verb", "/foo/**", True, True),
    ("/v1/books:search", "/v1/books/{id}", False, False),  # different lengths
    ("/v1/books:search", "/v1/{id}", True, True),
]


def _matches(template: str, path: str) -> bool:
    matcher: PathMatcher[str] = PathMatcher(TranscodingOptions().replace(empty_double_wildcard="anywhere"))
    matcher.add("GET", parse_template(template), template)
    try:
        return matcher.lookup("GET", path).value == template
    except NoRoute:
        return False


@pytest.mark.parametrize(("a", "b", "anywhere", "end_only"), OVERLAPS, ids=[f"{a} vs {b}" for a, b, _, _ in OVERLAPS])
def test_example_overlap(a: str, b: str, anywhere: bool, end_only: bool) -> None:
    for empty_anywhere, expected in ((True, anywhere), (False, end_only)):
        for first, second in ((a, b), (b, a)):
            path = example_overlap(parse_template(first), parse_template(second), empty_anywhere=empty_anywhere)
            assert (path is not None) == expected, (first, second, empty_anywhere, path)
            if path is not None and empty_anywhere:  # the example really is matched by both
                assert _matches(first, path) and _matches(second, path), path


def _warnings(descriptors: Path, anchor: str | None = None, **transcoding: object) -> list[str]:
    config = GatewayConfig.model_validate({
        "listen": {"plaintext": True},
        "backends": [{"name": "b", "target": "127.0.0.1:1", "descriptors": str(descriptors)}],
        "transcoding": transcoding,
    })
    warnings: list[str] = []
    problems = asyncio.run(_check(config, anchor, warnings))
    assert problems == []
    return warnings


def test_envoy_profile_names_the_template_envoy_refuses() -> None:
    warnings = _warnings(PATHS_SET, profile="envoy")
    assert warnings == [
        "backend b: compatpaths.v1.AfterService.After: GET /n/{x=**}/{y}: Envoy refuses this template "
        "(only literal segments may follow '**'); edge serves it"
    ]


def test_grpc_gateway_profile_names_overlaps_its_registration_order_decides_otherwise() -> None:
    warnings = _warnings(PATHS_SET, profile="grpc-gateway")
    text = "\n".join(warnings)
    # Same service: grpc-gateway tries the method declared later first.
    assert (
        "GET /v1/{name=files/**}/contents (compatpaths.v1.FileService.GetContents) and GET /v1/{name=files/**} "
        "(compatpaths.v1.FileService.GetFile) both match /v1/files/contents: edge routes it to "
        "compatpaths.v1.FileService.GetContents (matcher precedence), grpc-gateway to "
        "compatpaths.v1.FileService.GetFile (GET /v1/{name=files/**}, registered later)"
    ) in warnings
    assert "/foo/b:verb: edge routes it to compatpaths.v1.ShapeService.WildVerb" in text
    assert "/files/x:zip: edge routes it to compatpaths.v1.VerbService.Zip" in text
    # Across services the order is the server's: said so.
    assert "both match /things/tail:verb" in text and "whichever of the two services" in text
    # Where grpc-gateway's order gives the same answer, nothing is said: Download is
    # declared after GetFile, so it is tried first there too.
    assert "Download" not in text
    assert "Envoy" not in text


def test_clean_protos_and_the_edge_profile_get_no_warnings() -> None:
    assert _warnings(DEMO_SET, profile="envoy") == []
    assert _warnings(DEMO_SET, profile="grpc-gateway") == []  # /v1/users/me is declared after {user_id}
    assert _warnings(PATHS_SET) == []  # the edge profile follows no single anchor
    assert _warnings(PATHS_SET, anchor="none", profile="envoy") == []


def test_an_explicit_anchor_compares_the_options_in_force() -> None:
    warnings = _warnings(DEMO_SET, anchor="envoy")
    assert warnings[0] == (
        "paths: encoded control characters (%00-%1F, %7F) are refused (400) here, passed into the field by Envoy "
        "(path_control_chars)"
    )
    verbs = [w for w in warnings if "custom_verbs" in w]
    assert len(verbs) == 3 and all("Envoy answers 404" in w for w in verbs), verbs
    assert any(w.startswith("backend b: edgedemo.library.v1.LibraryService.SearchBooks: GET /v1/books:search:") for w in verbs)


@pytest.mark.parametrize(
    ("profile", "overrides", "expected"),
    [
        ("envoy", {"path_unescape": "all-except-slash"},
         "backend b: compatpaths.v1.FileService.GetContents: GET /v1/{name=files/**}/contents: {name} spans several "
         "segments: edge decodes every escape but `%2F`, Envoy keeps reserved characters' escapes (`%2F`, `%3A`, "
         "`%40`...) as sent (path_unescape)"),
        ("grpc-gateway", {"path_unescape": "all-except-reserved"},
         "backend b: compatpaths.v1.VerbService.GetThing: GET /things/{id}: {id}: a `%2F` in it is data here and "
         "splits the path under grpc-gateway (path_unescape)"),
        ("envoy", {"empty_double_wildcard": "anywhere"},
         "backend b: compatpaths.v1.ShapeService.Suffix: GET /a/{b=**}/d/e: the '**' before more segments may match "
         "no segment here but needs one under Envoy (empty_double_wildcard)"),
        ("grpc-gateway", {"empty_double_wildcard": "end-only"},
         "backend b: compatpaths.v1.FileService.GetFile: GET /v1/{name=files/**}: {name}: where its '**' matches "
         "nothing it holds an empty segment (a '/' more) under grpc-gateway (empty_double_wildcard)"),
        ("envoy", {"custom_verbs": "any"},
         "backend b: compatpaths.v1.VerbService.GetThing: GET /things/{id}: a last segment ending in `:xyz` that no "
         "template declares is data under Envoy, a verb that matches nothing here (custom_verbs)"),
        ("envoy", {"path_control_chars": "reject"},
         "paths: encoded control characters (%00-%1F, %7F) are refused (400) here, passed into the field by Envoy "
         "(path_control_chars)"),
    ],
)
def test_options_set_away_from_the_anchor_warn_where_a_template_makes_them_matter(profile, overrides, expected) -> None:
    assert expected in _warnings(PATHS_SET, profile=profile, **overrides)


def test_a_backend_profile_picks_its_own_anchor() -> None:
    config = GatewayConfig.model_validate({
        "listen": {"plaintext": True},
        "backends": [
            {"name": "paths", "target": "127.0.0.1:1", "descriptors": str(PATHS_SET), "transcoding": {"profile": "envoy"}},
            {"name": "demo", "target": "127.0.0.1:2", "descriptors": str(DEMO_SET)},
        ],
    })
    warnings: list[str] = []
    problems = asyncio.run(_check(config, None, warnings))
    assert problems == []
    # The path options are gateway-wide (the top level's edge profile), so Envoy's
    # clients of `paths` meet edge's verb and control-character rules: said so, for
    # that backend's templates only.
    assert warnings[0].startswith("paths: encoded control characters") and "Envoy" in warnings[0]
    assert {w.split(":")[0] for w in warnings[1:]} == {"backend paths"}
    assert any("After" in w and "Envoy refuses" in w for w in warnings)
    assert any("custom_verbs" in w for w in warnings)


def test_edge_check_prints_warnings_and_still_passes(tmp_path) -> None:
    config = tmp_path / "edge.yaml"
    config.write_text(
        "listen: {plaintext: true}\ntranscoding: {profile: envoy}\n"
        f"backends:\n  - name: paths\n    target: 127.0.0.1:1\n    descriptors: {PATHS_SET}\n"
    )
    result = subprocess.run([sys.executable, "-m", "edge.cli", "check", "--config", str(config)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "config OK" in result.stdout
    assert result.stderr.startswith("warning: backend paths: compatpaths.v1.AfterService.After: GET /n/{x=**}/{y}")
    result = subprocess.run([sys.executable, "-m", "edge.cli", "check", "--config", str(config), "--anchor", "none"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0 and result.stderr == ""
