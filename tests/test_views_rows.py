"""app/views/rows.py: one renderer per piece of markup, and the DOM contract app.js
relies on (issue 13); RowUrls builds exactly the URLs url_for would.

Every <tr> and <td> of a grid's body comes from app/views/rows.py, with the ids
and classes `Dom` makes; a toast's markup comes from partials/table_toast.html
only; the scripts clone what the server drew and build none. The contract itself
is the docstring of app/views/rows.py: every name the scripts use is in it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, url_for

from app.resources import TABLES
from app.ui import Table
from app.views import rows
from app.views.rows import Dom, RowUrls
from tests.conftest import Hx
from tests.live_html import Element, parse

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = [
    ROOT / "static/js" / name
    for name in ("app.js", "import.js", "live.js", "history.js")
]
TEMPLATES = ROOT / "templates"

# ------------------------------------------------------------ the scripts' names


def names_used(source: str) -> set[str]:
    """The classes (".x"), ids ("#x") and data-* attributes a script uses."""
    names: set[str] = set()
    selectors = re.findall(
        r"(?:querySelector(?:All)?|closest|matches|getElementById)\(\s*([\"'`])(.*?)\1",
        source,
    )
    selectors += re.findall(r"^\s*const [A-Z_]+ = ([\"'`])(.*?)\1;", source, re.M)
    for _quote, selector in selectors:
        selector = re.sub(r"\$\{[^}]*\}", " ", selector)  # template literal holes
        names |= {f".{c}" for c in re.findall(r"\.([a-zA-Z][\w-]*)", selector)}
        names |= {f"#{i}" for i in re.findall(r"#([a-zA-Z][\w-]*)", selector)}
        names |= set(re.findall(r"\[(data-[\w-]+)", selector))
    names |= {f"#{i}" for i in re.findall(r"getElementById\(\s*\"([^\"]+)\"", source)}
    changed = r"classList\.(?:contains|add|remove|replace)\(([^)]*)\)"
    for args in re.findall(changed, source):
        names |= {f".{c}" for c in re.findall(r"\"([\w-]+)\"", args)}
    for key in re.findall(r"dataset\.([a-zA-Z]+)", source):
        names.add("data-" + re.sub(r"[A-Z]", lambda m: "-" + m.group().lower(), key))
    return names


def test_the_name_reader_finds_the_kinds_of_name_the_scripts_use() -> None:
    source = """
    const CELL = `${GRID} > tbody > tr.data-row > td`;
    row.querySelector(':scope > td[data-field="x"]');
    document.getElementById("toasts"); el.classList.add("is-gone");
    row.dataset.updateUrl;
    """
    assert names_used(source) == {
        ".data-row", "data-field", "#toasts", ".is-gone", "data-update-url"
    }  # fmt: skip


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_name_a_script_uses_is_written_in_the_contract(script: Path) -> None:
    contract = rows.__doc__ or ""
    used = names_used(script.read_text())
    assert len(used) > 5  # the reader found the script's names
    missing = sorted(
        name for name in used if not re.search(re.escape(name) + r"(?![\w-])", contract)
    )
    assert not missing, f"{script.name} uses names app/views/rows.py does not document"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_build_no_markup(script: Path) -> None:
    source = script.read_text()
    # A <template> element is only ever made to parse a server response.
    made = re.findall(r"createElement\(\s*[\"'`](\w+)", source)
    assert set(made) <= {"template"}, made
    assert "insertAdjacentHTML" not in source
    assert "outerHTML =" not in source
    for assigned in re.findall(r"innerHTML\s*=\s*([^;]+);", source):
        assert assigned.strip() == "detail.serverResponse", assigned
    # No markup in a string: a quote, then a tag.
    assert not re.search(r"[\"'`]\s*<[a-zA-Z]", source)


# ------------------------------------------------------------ the templates


def template_source(path: Path) -> str:
    """A template's text without its Jinja comments."""
    return re.sub(r"\{#.*?#\}", "", path.read_text(), flags=re.S)


# Tables that are not grids: the import's report of counts and refused lines.
NOT_GRIDS = {"partials/import_preview.html"}


def test_no_template_draws_a_body_row_or_cell() -> None:
    checked = 0
    for path in sorted(TEMPLATES.rglob("*.html")):
        name = path.relative_to(TEMPLATES).as_posix()
        if name in NOT_GRIDS:
            continue
        source = template_source(path)
        # Header rows (<tr> of <th>) are the templates'; body rows are rows.py's.
        outside_head = re.sub(r"<thead>.*?</thead>", "", source, flags=re.S)
        assert not re.search(r"<t[rd][\s>]", outside_head), name
        checked += 1
    assert checked > 10


def test_only_the_toast_partial_draws_a_toast() -> None:
    drawing = {
        path.relative_to(TEMPLATES).as_posix()
        for path in TEMPLATES.rglob("*.html")
        if re.search(r"class=\"toast[\s\"{]", template_source(path))
    }
    assert drawing == {"partials/table_toast.html"}


def markup_strings(path: Path) -> list[str]:
    """The string constants of a module that are not docstrings."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_no_other_module_draws_a_body_row_or_cell() -> None:
    drawing = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "app").rglob("*.py")
        if any(re.search(r"<t[rd][\s>]", s) for s in markup_strings(path))
    }
    assert drawing == {"app/views/rows.py"}


# ------------------------------------------------------------ what is rendered


def owner(row_id: str) -> tuple[Table, int]:
    """The table and row number whose Dom.row_id is `row_id`."""
    number = int(row_id.rpartition("-")[2])
    found = [t for t in TABLES.values() if Dom.row_id(t, number) == row_id]
    assert len(found) == 1, row_id
    return found[0], number


def cell_state(td: Element) -> str:
    """ "editing" or "conflict" by what the cell holds, else ""."""
    if td.find("form", class_="cell-editor"):
        return "editing"
    if td.find("form", class_="cell-conflict"):
        return "conflict"
    return ""


def check_data_row(tr: Element, seen: dict[str, int]) -> None:
    """A data row and its cells are exactly as the contract says."""
    table, number = owner(tr["id"])
    # Order matters: app.js finds a restored row by `<tr id="…" class="data-row`.
    assert list(tr.attrs) == [
        "id", "class", "data-version", "data-row-url", "data-update-url"
    ]  # fmt: skip
    assert tr["class"] in {Dom.row_class(), Dom.row_class(new=True)}
    seen["row"] += 1
    for td in tr.children:
        if not isinstance(td, Element):
            continue
        assert td.tag == "td"
        assert td["tabindex"] == "-1"
        name = td.get("data-field")
        if name is None:
            assert list(td.attrs) == ["class", "tabindex"], td.attrs
            assert td["class"] in {"toggle js-only", "summary", "actions"}
            seen[td["class"]] += 1
            continue
        field = table.resource.field(name)
        state = cell_state(td)
        assert list(td.attrs) == ["id", "class", "data-field", "tabindex"]
        assert td["id"] == Dom.cell_id(table, number, name)
        assert td["class"] == Dom.cell_class(field, table.editable(name), state)
        seen[f"cell {state}".strip()] += 1


def check_other_row(tr: Element, seen: dict[str, int]) -> None:
    """An empty-table row or a child row: one cell across the grid."""
    cells = [c for c in tr.children if isinstance(c, Element)]
    assert len(cells) == 1 and cells[0].tag == "td"
    assert list(cells[0].attrs) == ["colspan"]
    if tr.attrs == {"class": "empty-row"}:
        seen["empty"] += 1
        return
    assert list(tr.attrs) == ["id", "class", "data-child-of"]
    assert tr["class"] == "child-row"
    parent_table, number = owner(tr["data-child-of"])
    child = tr["id"].removeprefix(tr["data-child-of"] + "-")
    assert tr["id"] == Dom.child_row_id(parent_table, number, child)
    assert child in parent_table.children
    seen["child"] += 1


def check_body(html: str, seen: dict[str, int]) -> None:
    """Every <tr> and <td> outside a <thead> is one the contract knows."""
    tree = parse(html)
    heads = {id(el) for head in tree.find_all("thead") for el in head.iter()}
    reports = {
        id(el)
        for report in tree.find_all("table")
        if report.get("class") in {"import-counts", "import-errors"}
        for el in report.iter()
    }
    for tr in tree.find_all("tr"):
        if id(tr) in heads or id(tr) in reports:
            continue
        if "data-row" in tr.classes:
            check_data_row(tr, seen)
        else:
            check_other_row(tr, seen)
    cells = [td for tr in tree.find_all("tr") for td in tr.find_all("td")]
    for td in tree.find_all("td"):
        assert any(td is c for c in cells), "a <td> outside any row"


def responses(client: Any, hx: Hx, sample: dict[str, int]) -> list[Any]:
    """Every page and fragment that draws rows or cells, in one sitting."""
    alien, blade, cure = sample["alien"], sample["blade"], sample["cure"]
    out = [
        client.get("/movies"),
        client.get("/ratings?q=zzz"),  # no match: the empty row
        hx.get("/movies?sort=-rating"),
        hx.get("/ratings"),
        hx.get(f"/movies/{alien}/row"),
        hx.get("/ratings/1/row?nested=1"),
        hx.get(f"/movies/{alien}/ratings"),
        hx.get(f"/movies/{cure}/ratings"),
        hx.patch(f"/movies/{alien}", data={"name": "Alien!", "version": "1"}),
        hx.patch(f"/movies/{alien}", data={"rating": "eleven", "version": "2"}),
        hx.patch(f"/movies/{alien}", data={"name": "Mine", "version": "1"}),
        hx.patch(f"/movies/{blade}", data={"rating": "3", "version": "0"}),
        hx.patch("/ratings/2?nested=1", data={"rating": "x", "version": "1"}),
        hx.patch("/ratings/2?nested=1", data={"author": "Z", "version": "0"}),
        hx.post("/movies", data={"name": "Dune", "director": "D. V.", "rating": "8"}),
        hx.post(f"/movies/{blade}/ratings", data={"rating": "5", "author": "Ed"}),
    ]
    deleted = hx.delete(f"/movies/{cure}")
    token = re.search(r'name="token" value="([^"]+)"', deleted.text)
    assert token
    out.append(hx.post("/movies/undo", data={"token": token.group(1)}))
    return out


def test_every_body_row_and_cell_is_the_contract_helpers(
    app: Flask, client: Any, hx: Hx, sample: dict[str, int]
) -> None:
    seen: dict[str, int] = dict.fromkeys(
        ["row", "cell", "cell editing", "cell conflict", "empty", "child",
         "toggle js-only", "summary", "actions"], 0,
    )  # fmt: skip
    for response in responses(client, hx, sample):
        assert response.status_code in {200, 409, 422}, response.request.path
        check_body(response.text, seen)
    # Each kind of row and cell was drawn and checked, so none passes unseen.
    assert all(seen.values()), seen
    assert seen["cell editing"] == 2 and seen["cell conflict"] == 3


def test_a_cell_drawn_another_way_is_caught() -> None:
    seen: dict[str, int] = {}
    row = (
        '<tr id="movie-1" class="data-row" data-version="1" data-row-url="/r"'
        ' data-update-url="/u"><td id="movie-1-name" class="cell editable"'
        ' data-field="name">Alien</td></tr>'  # no tabindex
    )
    with pytest.raises((AssertionError, KeyError)):
        check_body(row, seen)
    with pytest.raises(AssertionError):
        check_body('<table><tr class="data-row" id="x-1"></tr></table>', seen)


def test_the_toast_template_is_the_toast_partial_blank(client: Any) -> None:
    tree = parse(client.get("/movies").text)
    template = tree.by_id("toast-template")
    blank = next(c for c in template.children if isinstance(c, Element))
    assert "id" not in blank.attrs  # clones must not share an id
    assert blank.classes == {"toast", "toast-error"}
    assert blank["role"] == "alert"
    assert blank.find("p", class_="toast-text").text == ""
    assert blank.find("button", class_="toast-retry").get("hidden") is not None
    assert blank.find("button", data_dismiss="") is not None


def test_the_import_size_message_is_the_import_error_partial(client: Any) -> None:
    tree = parse(client.get("/import").text)
    box = next(
        c for c in tree.by_id("import-message").children if isinstance(c, Element)
    )
    assert box.attrs == {"class": "error-message", "role": "alert"}
    assert box.find("strong").text == "This file cannot be imported."
    assert box.find("span", class_="error-detail").text == ""


# ------------------------------------------------------------ RowUrls


@pytest.mark.parametrize("nested", [False, True])
@pytest.mark.parametrize("name", ["movies", "ratings"])
def test_row_urls_equal_url_for(app: Flask, name: str, nested: bool) -> None:
    table = TABLES[name]
    extra = {"nested": 1} if nested else {}
    with app.test_request_context("/"):
        urls = RowUrls(table, nested=nested, back="/movies?q=a&sort=-rating")
        for row_id in (1, 42, 10**12):
            assert urls.row(row_id) == url_for(f"{name}.row", row_id=row_id, **extra)
            assert urls.delete(row_id) == url_for(
                f"{name}.delete", row_id=row_id, **extra
            )
            assert urls.delete_form(row_id) == url_for(
                f"{name}.delete_form", row_id=row_id, **extra
            )
            assert urls.edit(row_id) == url_for(
                f"{name}.edit", row_id=row_id, next="/movies?q=a&sort=-rating"
            )
            assert urls.update(row_id) == url_for(
                f"{name}.update", row_id=row_id, **extra
            )
            if not nested:
                for child in table.children:
                    assert urls.child(row_id, child) == url_for(
                        f"{name}.children", row_id=row_id, child=child
                    )


def test_row_urls_without_back_are_built_once_per_app_and_root(app: Flask) -> None:
    from app.views.rows import _row_urls

    table = TABLES["movies"]
    with app.test_request_context("/"):
        first = _row_urls(table, False, None)
        assert _row_urls(table, False, None) is first
        assert _row_urls(table, True, None) is not first
        assert _row_urls(table, False, "/movies?q=a") is not first
        assert first.row(5) == url_for("movies.row", row_id=5)
    # Mounted elsewhere (SCRIPT_NAME), the same app builds other URLs.
    with app.test_request_context("/", base_url="http://localhost/sub"):
        mounted = _row_urls(table, False, None)
        assert mounted is not first
        assert mounted.row(5) == "/sub/movies/5/row"
