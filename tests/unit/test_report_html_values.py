"""The HTML report's table values (report_html `value` and `rows`): Python since issue 19, printing
exactly what the template's macros printed (a saved 10-link fix and 100-link audit render to the same
bytes), so each kind of value is pinned here."""

from __future__ import annotations

from xcon import report_html


def _value(value):
    return str(report_html._value(value))  # pylint: disable=protected-access


def test_scalars_are_yes_no_dash_or_their_escaped_inert_text():
    assert [_value(v) for v in (True, False, None, 0, 2.5, "")] == ["yes", "no", "-", "0", "2.5", ""]
    assert _value("<b>&'\"") == "&lt;b&gt;&amp;&#39;&#34;"
    assert _value("\x1b[31mred") == "\\x1b[31mred"  # a terminal control from a server is shown, not obeyed


def test_a_mapping_is_one_line_per_key_sorted_without_case_nested_values_as_json():
    assert _value({"b": True, "A": None, "c": {"x": 1}, "d": [1, "<"]}) == (
        'A: -<br>b: yes<br>c: <code>{&#34;x&#34;: 1}</code><br>d: <code>[1, &#34;&lt;&#34;]</code>')
    assert _value({}) == "-"
    assert _value({"<k>": "v"}) == "&lt;k&gt;: v"


def test_events_are_a_table_and_a_missing_field_is_empty():
    assert _value([{"time": "10:00", "id": 9297, "message": "refused <x>"}, {"message": "m"}, "odd"]) == (
        '<table class="samples"><tr><th>time</th><th>event</th><th>message</th></tr>\n'
        '<tr><td>10:00</td><td>9297</td><td>refused &lt;x&gt;</td></tr><tr><td></td><td></td><td>m</td></tr>'
        '<tr><td></td><td></td><td></td></tr></table>\n')


def test_lists_of_texts_of_mappings_and_of_scalars():
    assert _value([{"text": "one"}, {"other": 1}, {"text": "<two>"}]) == "one<br><br>&lt;two&gt;"
    assert _value([{"b": 1, "a": None}, {}]) == "<code>{&#34;a&#34;: null, &#34;b&#34;: 1}</code><br><code>{}</code>"
    assert _value(["a<", 1, None, True]) == "a&lt;, 1, None, True"
    assert _value([]) == "none"


def test_rows_are_a_two_column_table_with_spaces_for_underscores():
    assert str(report_html._rows({"queue_length": 12, "Last_event": {"id": 9297}})) == (  # pylint: disable=protected-access
        '<table class="kv"><tr><td class="name">Last event</td><td>id: 9297</td></tr>'
        '<tr><td class="name">queue length</td><td>12</td></tr></table>\n')
