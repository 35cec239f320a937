#!/usr/bin/env python3
"""make-jinja-golden.py - golden outputs for the C Jinja interpreter.

Renders every chat template in tests/data/jinja (the ../shared/templates
ones, SmolLM2's and Gemma 3's) over a set of conversations, plus a list of
small snippets that exercise single constructs, with Python's jinja2 set
up exactly as Hugging Face transformers' apply_chat_template() sets it
up, and writes tests/data/jinja/cases.json: inputs, and the expected
output or error of each case. tests/unit-jinja.c checks the C renderer
against it byte for byte.

    pip install jinja2 && scripts/make-jinja-golden.py [--check]

strftime_now() formats a fixed time (NOW below) so that the output is
reproducible; the C test passes the same time through jinja_opts.now.
"""
import datetime
import json
import os
import sys

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "tests", "data", "jinja")
NOW = datetime.datetime(2024, 7, 26, 10, 30, 0)


class Raised(jinja2.exceptions.TemplateError):
    """An error the template raised with raise_exception()."""


class AssistantTracker(Extension):
    """transformers' {% generation %} block: renders its body unchanged
    (transformers also records where assistant text is)."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        call = self.call_method("_render", [])
        return nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_env():
    # as transformers.utils.chat_template_utils._compile_jinja_template
    def raise_exception(message):
        raise Raised(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent,
                          separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return NOW.strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


# ---- conversations ----

SYS = {"role": "system", "content": "You are a helpful assistant."}
U1 = {"role": "user", "content": "Hello! What is 2+2?"}
A1 = {"role": "assistant", "content": "2+2 is 4."}
U2 = {"role": "user", "content": "And 3+3?"}

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string",
                             "description": "The city and country, e.g. Paris, France"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"],
                         "description": "The temperature unit"},
            },
            "required": ["location"],
        },
    },
}
SEARCH = {
    "type": "function",
    "function": {
        "name": "web_search",
        "description": "Search the web and return the top results.",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "Query text", "maxLength": 200},
                "limit": {"type": "integer", "description": "Max results", "default": 5,
                          "minimum": 1, "maximum": 50},
                "tags": {"type": "array", "items": {"type": "string"},
                         "description": "Filter tags", "examples": [["news", "tech"]]},
                "filters": {"type": "object", "description": "Extra filters",
                            "properties": {"lang": {"type": "string",
                                                    "description": "Language code"},
                                           "safe": {"type": "boolean"}},
                            "required": ["lang"]},
                "mode": {"type": ["string", "null"], "description": "Mode"},
                "score": {"type": "number", "nullable": True,
                          "description": "Minimum score", "default": 0.5},
                "when": {"oneOf": [{"type": "string", "format": "date"},
                                   {"type": "integer", "format": "epoch"}],
                         "description": "Date"},
            },
            "required": ["query"],
        },
        "return": {"type": "array", "description": "The results"},
    },
}
NOARGS = {"type": "function", "function": {
    "name": "get_time", "description": "Current time.",
    "parameters": {"type": "object", "properties": {}, "required": []}}}
SEARCH_SIMPLE = {
    "type": "function",
    "function": {
        "name": "web_search",
        "description": "Search the web.",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "Query text"},
                "limit": {"type": "integer", "description": "Max results", "default": 5,
                          "minimum": 1, "maximum": 50},
                "tags": {"type": "array", "items": {"type": "string"},
                         "description": "Filter tags"},
            },
            "required": ["query"],
        },
    },
}
CODE = {"type": "code_interpreter"}


def call(args_as_str, cid="call12345", name="get_current_weather",
         args=None):
    args = args or {"location": "Paris, France", "unit": "celsius"}
    return {"id": cid, "type": "function",
            "function": {"name": name,
                         "arguments": json.dumps(args) if args_as_str else args}}


def tool_conv(args_as_str, content):
    return [
        SYS,
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": content, "tool_calls": [call(args_as_str)]},
        {"role": "tool", "tool_call_id": "call12345", "name": "get_current_weather",
         "content": "{\"temperature\": 22, \"unit\": \"celsius\"}"},
        {"role": "assistant", "content": "It is 22 °C in Paris."},
        {"role": "user", "content": "Thanks!"},
    ]


def two_calls(args_as_str):
    return [
        {"role": "user", "content": "Weather in Paris and news about it?"},
        {"role": "assistant", "content": None, "tool_calls": [
            call(args_as_str),
            call(args_as_str, "call67890", "web_search", {"query": "Paris news", "limit": 3})]},
        {"role": "tool", "tool_call_id": "call12345", "name": "get_current_weather",
         "content": "22 degrees"},
        {"role": "tool", "tool_call_id": "call67890", "name": "web_search",
         "content": "[\"Olympics open\"]"},
    ]


UNICODE = "Grüße, 世界! 😀 — «ñ» \u00a0nbsp\u2028sep\n  indented\ttab\u3000 "
JINJA_TEXT = "{{ 1 + 1 }} {% if x %}y{% endif %} {# c #} '\" \\ </s> <|im_end|> [INST]"

CONVS = {
    "user": ([U1], {}),
    "system_user": ([SYS, U1], {}),
    "multi_turn": ([SYS, U1, A1, U2], {}),
    "multi_turn_nosys": ([U1, A1, U2], {}),
    "ends_assistant": ([U1, A1], {}),
    "unicode": ([{"role": "system", "content": "Réponds en français. " + UNICODE},
                 {"role": "user", "content": UNICODE},
                 {"role": "assistant", "content": "Ça va? «ok» " + UNICODE},
                 {"role": "user", "content": "Привет " + UNICODE}], {}),
    "jinja_text": ([{"role": "user", "content": JINJA_TEXT},
                    {"role": "assistant", "content": JINJA_TEXT},
                    {"role": "user", "content": JINJA_TEXT}], {}),
    "whitespace": ([{"role": "system", "content": "\n  sys  \n"},
                    {"role": "user", "content": "  padded  \n\n"},
                    {"role": "assistant", "content": "\t answer \n"},
                    {"role": "user", "content": ""}], {}),
    "think": ([U1, {"role": "assistant", "content": "<think>2+2: add.</think>\n\nIt is 4."},
               U2], {}),
    "not_alternating": ([U1, U2], {}),
    "empty": ([], {}),
    "multimodal": ([{"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                    {"role": "user", "content": [{"type": "text", "text": " Describe "},
                                                 {"type": "image"},
                                                 {"type": "text", "text": "this."}]}], {}),
    "content_none": ([U1, {"role": "assistant", "content": None}, U2], {}),
    "tools_defined": ([SYS, U1], {"tools": [WEATHER, NOARGS]}),
    "tools_rich": ([{"role": "user", "content": "Find news"}],
                   {"tools": [SEARCH, NOARGS, WEATHER]}),
    "tools_call_dict": (tool_conv(False, None), {"tools": [WEATHER]}),
    "tools_call_str": (tool_conv(True, None), {"tools": [WEATHER]}),
    "tools_call_empty_content": (tool_conv(False, ""), {"tools": [WEATHER]}),
    "tools_two_calls_str": (two_calls(True), {"tools": [WEATHER, SEARCH_SIMPLE]}),
    "tools_two_calls_dict": (two_calls(False), {"tools": [WEATHER, SEARCH_SIMPLE]}),
    "tools_call_str_kwargs": (tool_conv(True, None),
                              {"tools": [WEATHER], "functions": "[get_current_weather]",
                               "datetime": "2024-07-26", "builtin_tools": ["brave_search"]}),
    "tools_code_interpreter": ([U1], {"tools": [CODE, WEATHER]}),
    "tools_undefined": ([SYS, U1], {"tools": "__absent__"}),
    "extra_kwargs": ([SYS, U1, A1, U2],
                     {"tools": [WEATHER], "date_string": "01 Jan 2025",
                      "tools_in_user_message": False, "builtin_tools": ["brave_search", "code_interpreter"],
                      "functions": "[{\"name\": \"f\"}]", "datetime": "2024-07-26",
                      "documents": [{"title": "Doc", "text": "Some text."}],
                      "enable_citations": True}),
}

# add_generation_prompt both ways for these; True only for the others
BOTH_AGP = {"user", "multi_turn", "ends_assistant", "tools_call_dict", "whitespace"}


def base_ctx(messages, extra, agp):
    ctx = {"messages": messages, "tools": None, "documents": None,
           "add_generation_prompt": agp, "bos_token": "<s>", "eos_token": "</s>"}
    for k, v in extra.items():
        if v == "__absent__":
            ctx.pop(k)
        else:
            ctx[k] = v
    return ctx


# ---- snippets: one construct each ----

SNIPPET_CTX = {
    "d": {"a": 1, "b": [2, 3], "items": "key named items", "s": "str", "n": None},
    "l": [3, 1, 2],
    "words": ["b", "A", "a", "B", "c"],
    "s": "  Hello, World  ",
    "u": "héllo wörld ÉTÉ",
    "objs": [{"name": "x", "type": "t1", "v": 2}, {"name": "y", "v": 1},
             {"name": "z", "type": "t2", "v": 3}],
    "f": 2.5,
    "big": 12345678901234,
    "t": True,
    "none": None,
    "empty": "",
    "nested": {"a": {"b": {"c": [1, {"d": "deep"}]}}},
    "uni": "ß ﬁ ᾈ ΐ ΑΣ\u00adΣ ͺx ǅx İ \u0378\u00ad\u200b\u2028 é😀",
}

SNIPPETS = [
    # whitespace control
    "a\n  {% if true %}\n  b\n  {% endif %}\nc\n",
    "a  {% if true %}x{% endif %}  \n",
    "  {# c #}\nx",
    "x  {{ 1 }}  \n  {{- 2 -}}  \n y",
    "{% raw %}\n {{ x }}{% endraw %}|{%- raw -%}  a  {%- endraw -%}  |",
    "a\r\nb\rc\n\n",
    "{% if true +%}\nX{%+ endif %}",
    "  {%+ if true %}y{% endif %}",
    "\t {% set x = 1 %}\n\t {{ x }}",
    "{%- if true -%}  \n  a  \n  {%- endif -%}  \n",
    "line1\n    {%- for i in l %}\n    {{ i }}\n    {%- endfor %}\nend",
    "{% for i in l %}\n  {% if i > 1 %}\n    {{ i }}\n  {% endif %}\n{% endfor %}\n",
    "{#- comment -#}\n  x  {#+ keep +#}\n",
    "{{ 'a' }}\n{{ 'b' }}\n",
    "\u00a0\u3000{%- if true %}x{% endif %}",
    # literals and printing
    "{{ [1,'a',none,true,1.5,{'k':[2]},(1,),(1,2)] }}",
    "{{ {'a': none, 1: 2.5, 'b': [true]} }}",
    "{{ ['é', \"a'b\", 'a\"b', \"a'\\\"b\", '\\n\\t\\r', '\\u00a0', '\\x7f', '\\u200b', '\\U0001F600', '\\x00'] }}",
    "{{ 'a\\nb\\x41\\u00e9\\q' }}|{{ \"ab\" 'cd' }}|{{ '\\101\\0' }}",
    "{{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ 1/3 }} {{ 2.0 }} {{ 1.5e3 }} {{ 1_000 }} {{ 0x1F }}",
    "{{ 3|float }} {{ 1e100 }} {{ 123456789012345678.0 }} {{ 0.1+0.2 }} {{ -0.0 }} {{ 1e-7 }} {{ f }} {{ big }}",
    "{{ none }} {{ true }} {{ false }} {{ True }} {{ None }} [{{ undefined_thing }}]",
    "{{ 1, 2 }} {{ () }} {{ (1) }} {{ [] }} {{ {} }}",
    # arithmetic and operators
    "{{ 7//2 }} {{ -7//2 }} {{ -7 % 3 }} {{ 7/2 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 2**10 }} {{ 2**-1 }} {{ 2**3**2 }} {{ -2**2 }}",
    "{{ 'a' * 3 }}{{ 3 * 'b' }}{{ [1] * 2 }}{{ [1] + [2] }}{{ 'x' ~ none ~ 1.0 ~ [1] ~ undefined_thing }}",
    "{{ 1 + true }} {{ true + true }} {{ 1.5 + 1 }} {{ 10 - 2 - 3 }} {{ 2 * 3 + 4 }} {{ 2 * (3 + 4) }}",
    "{{ not 1 == 2 }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} {{ true == 1 }} {{ [1] == (1,) }} {{ 'a' < 'b' }} {{ [1,2] < [1,3] }}",
    "{{ true and 'x' }} {{ 0 or 'y' }} {{ none or 0 }} {{ 'a' and 0 }} {{ not none }} {{ not '' }}",
    "{{ 'x' in 'axb' }} {{ 2 in l }} {{ 'a' in d }} {{ 'z' not in d }} {{ 'x' in undefined_thing }} {{ 1 in [1.0] }}",
    "{{ 'yes' if t else 'no' }} {{ 'yes' if none else 'no' }} [{{ 'x' if false }}] {{ (1 if false) is defined }}",
    # lookups
    "{{ d.a }} {{ d['b'][1] }} {{ d.b.0 }} {{ d.items is defined }} {{ d['items'] }} {{ d.zz }}|{{ d.s }}",
    "{{ d.get('a') }} {{ d.get('z') }} {{ d.get('z', 5) }} {{ d.keys() }} {{ d.values() }}",
    "{{ d.items() }} {{ d.items()|list }} {{ d.items()|length }} {{ (d.items()|list)[0] }}",
    "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}",
    "{% for k in d %}{{ k }},{% endfor %}|{% for c in 'abé' %}{{ c }}.{% endfor %}",
    "{{ l[0] }} {{ l[-1] }} {{ l[5] }}|{{ l[1:] }} {{ l[:-1] }} {{ l[::-1] }} {{ l[::2] }} {{ l[-5:] }} {{ l[2:1] }}",
    "{{ u[0] }} {{ u[-1] }} {{ u[1:4] }} {{ u[::-1] }} {{ u[::3] }} {{ 'abc'[5:] }}",
    "{{ nested.a.b.c[1].d }} {{ nested['a']['b']['c'][0] }} {{ s.content is defined }} {{ s.title is defined }}",
    "{{ none.x is defined }} {{ l.count(1) }} {{ l.index(2) }} {{ (1, 2).index(2) }}",
    "{{ d.update is defined }} {{ l.append is defined }}",
    # string methods
    "[{{ s.strip() }}] [{{ s.lstrip() }}] [{{ s.rstrip() }}] [{{ 'xxaxx'.strip('x') }}] [{{ u.upper() }}] [{{ u.lower() }}]",
    "{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ '  a b  c '.split(none, 1) }} {{ 'a b c'.rsplit(' ', 1) }} {{ ' a b c '.rsplit(none, 1) }}",
    "{{ 'abc'.startswith('ab') }} {{ 'abc'.endswith(('c','x')) }} {{ 'abc'.startswith('b') }} {{ 'x</think>y'.split('</think>')[-1] }}",
    "{{ 'hello world'.title() }} {{ \"they're bill's\".title() }} {{ 'hELLO'.capitalize() }} {{ 'ß straße'.upper() }} {{ 'ΟΔΟΣ ΣΑ'.lower() }}",
    "{{ 'aXa'.replace('a','b') }} {{ 'aaa'.replace('a','b',2) }} {{ 'abc'.replace('','-') }} {{ 'a'.join(['x','y','z']) }}",
    "{{ '{}-{x}-{0}'.format(1, x=2) }} {{ '{:>5}|{:<4}|{:^5}|{:05d}|{:.2f}|{:,}'.format('ab', 'c', 'd', 42, 3.14159, 1234567) }}",
    "{{ 'abcabc'.find('c') }} {{ 'abcabc'.rfind('c') }} {{ 'abcabc'.count('bc') }} {{ 'héllo'.find('l') }} {{ '12'.isdigit() }} {{ 'ab'.isalpha() }} {{ 'AB'.isupper() }}",
    "{{ 'a\\nb\\r\\nc'.splitlines() }} {{ 'prefix-x'.removeprefix('prefix-') }}",
    "{{ uni|upper }}|{{ uni|lower }}|{{ uni.title() }}|{{ uni|title }}|{{ uni|capitalize }}|{{ uni.swapcase() }}|{{ [uni] }}|{{ uni.isupper() }}{{ uni.islower() }}",
    # filters
    "[{{ s|trim }}] [{{ 'xxaxx'|trim('x') }}] [{{ none|trim }}] [{{ undefined_thing|trim }}] [{{ u|trim|upper }}]",
    "{{ 'a b'|title }} {{ 'hELLO wORLD'|capitalize }} {{ 'ab-cd efG(x'|title }} {{ \"they're\"|title }} {{ none|lower }} {{ u|upper }}",
    "{{ 'a\\nb\\n\\nc'|indent(2) }}|{{ 'a\\nb\\n\\nc'|indent(2, true, true) }}|{{ 'a\\nb\\n'|indent(2, first=true) }}|{{ 'x\\ny'|indent('> ') }}",
    "{{ l|sort }} {{ words|sort }} {{ words|sort(reverse=true) }} {{ words|sort(case_sensitive=true) }} {{ objs|sort(attribute='v')|map(attribute='name')|list }}",
    "{{ words|unique|list }} {{ words|unique(case_sensitive=true)|list }} {{ l|reverse|list }} {{ 'abc'|reverse }} {{ objs|map(attribute='type')|unique|list }}",
    "{{ l|join }}|{{ l|join(', ') }}|{{ objs|join(',', attribute='name') }}|{{ 'abc'|join('-') }}",
    "{{ objs|map(attribute='type')|list }}|{{ words|map('upper')|list }}|{{ objs|map(attribute='type', default='?')|list }}|{{ ['1','2']|map('int')|sum }}",
    "{{ [1,0,2]|select|list }}{{ [1,0,2]|reject|list }}{{ [1,2,3]|select('odd')|list }}{{ [1,2,3]|select('>', 1)|list }}{{ l|reject('equalto', 1)|list }}",
    "{{ objs|selectattr('type')|map(attribute='name')|list }} {{ objs|rejectattr('type')|map(attribute='name')|list }} {{ objs|selectattr('type', 'equalto', 't2')|list|length }} {{ objs|selectattr('type', 'defined')|list|length }}",
    "{{ '3'|int + 1 }} {{ 'x'|int }} {{ '3.7'|int }} {{ 3.7|int }} {{ '2.5'|float }} {{ 'x'|float }} {{ true|int }} {{ ' 42 '|int }} {{ '1_000'|int }} {{ 'x'|int(7) }} {{ 'ff'|int(base=16) }}",
    "{{ x|default('d') }} {{ ''|default('d') }} {{ ''|default('d', true) }} {{ none|default('d') }} {{ x|d('e') }} {{ 0|d(5, boolean=true) }}",
    "{{ l|first }} {{ l|last }} {{ 'abc'|first }} [{{ []|first }}] {{ l|length }} {{ 'héllo'|count }} {{ d|length }} {{ undefined_thing|length }}",
    "{{ \"<a&'\\\">\"|e }} {{ '<a>'|escape }} {{ ('<a>'|e) + '<b>' }} {{ 'a'|safe + '<b>' + ('x'|safe) }} {{ '<a>' + 'b'|safe }} {{ ('<'|safe) ~ '<' }}",
    "{{ 5|string + 'a' }} {{ [1,'b']|string }} {{ none|string }} {{ d|string }}",
    "{{ d|tojson }} {{ l|tojson(indent=2) }} {{ {}|tojson(indent=2) }} {{ 'é\\n\\u0001\"\\\\'|tojson }} {{ 1.0|tojson }} {{ nested|tojson(indent=1) }}",
    "{{ d|tojson(ensure_ascii=true) }} {{ u|tojson(true) }} {{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }} {{ [1, {'a': 2}]|tojson(separators=(',', ':')) }} {{ (1, 2)|tojson }}",
    "{{ d|items|list }} {% for k, v in d|items %}{{ k }}{% endfor %} {{ d|dictsort }} {{ d|dictsort(reverse=true)|first }}",
    "{{ -3|abs }} {{ 2.567|round(2) }} {{ 2.5|round }} {{ 3.5|round }} {{ 2.1|round(method='ceil') }} {{ 7|round }} {{ l|sum }} {{ l|max }} {{ l|min }} {{ words|max }} {{ objs|sum(attribute='v') }}",
    "{{ '%s-%d'|format('a', 3) }} {{ '%s=%r' % ('a', 'b') }} {{ '%5.1f|%-4s|%03d|%x' % (3.14159, 'ab', 7, 255) }} {{ '%s' % [1] }} {{ '%(a)s' % d }}",
    "{{ objs|map(attribute='name')|join('') }} {{ l|list }} {{ 'ab'|list }} {{ d|list }} {{ l|attr('count')(3) }}",
    "{{ l|select('in', [1, 2])|list }} {{ words|select('lower')|list }} {{ l|map('string')|join('+') }}",
    # tests
    "{{ x is undefined }} {{ none is none }} {{ 'a' is string }} {{ d is mapping }} {{ [1] is sequence }} {{ 1.5 is number }} {{ true is boolean }} {{ true is true }} {{ 0 is false }}",
    "{{ 2 is even }} {{ 3 is odd }} {{ 6 is divisibleby 3 }} {{ 1 is integer }} {{ 1.0 is float }} {{ 1 is eq 1 }} {{ 'a' is in 'abc' }} {{ x is callable }} {{ d.get is callable }} {{ 2 is gt 1 }} {{ 'ab' is lower }}",
    "{{ u is sequence }} {{ undefined_thing is iterable }} {{ {} is sequence }} {{ true is number }} {{ none is iterable }} {{ l|map('int') is iterable }} {{ (l|map('int')) is sequence }} {{ 'upper' is filter }} {{ 'odd' is test }}",
    "{{ l|select('odd') is defined }} {% if []|select %}gen-truthy{% endif %} {% if d.items() %}view-truthy{% endif %}",
    # statements
    "{% for i in [1,2] %}{% if i == 1 %}{% set x = 5 %}{% endif %}[{{ x }}]{% endfor %}",
    "{% set x = 1 %}{% for i in [1,2] %}[{{ x }}]{% set x = x + 1 %}[{{ x }}]{% endfor %}{{ x }}",
    "{% set ns = namespace(a=1, b='x') %}{% for i in l %}{% set ns.a = ns.a + i %}{% endfor %}{{ ns.a }} {{ ns.b }} {{ ns.zz }} {{ ns }}",
    "{% set ns = namespace() %}{% set ns.items = [] %}{% for i in l %}{% set ns.items = ns.items + [i * 2] %}{% endfor %}{{ ns.items }}",
    "{% for x in l if x > 1 %}{{ loop.index }}/{{ loop.length }}:{{ x }}{{ loop.previtem }}{{ loop.nextitem }};{% else %}E{% endfor %}",
    "{% for x in [] %}a{% else %}E{% endfor %}{% for x in undefined_thing %}a{% else %}U{% endfor %}",
    "{% for x in l %}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.cycle('a','b') }}{{ loop.depth }}|{% endfor %}",
    "{% for x in [1,2,3,4] %}{% if x == 2 %}{% continue %}{% endif %}{{ x }}{% if x == 3 %}{% break %}{% endif %}{% endfor %}",
    "{% for a, b in [(1,2),(3,4)] %}{{ a }}{{ b }}{% endfor %} {% for a, b in ['xy'] %}{{ b }}{{ a }}{% endfor %}",
    "{% for x in l %}{% for y in 'ab' %}{{ loop.index }}{{ x }}{{ y }} {% endfor %}{{ loop.index }};{% endfor %}",
    "{% set a, b = 1, 2 %}{{ a }}{{ b }} {% set c = (3, 4) %}{{ c }} {% set e = [5] %}{{ e }}",
    "{% set x %}  a\n{% endset %}[{{ x }}] {% set y | upper | trim %} b {% endset %}[{{ y }}]",
    "{% filter upper %}ab{{ 'c' }}{% endfilter %}{% filter trim %}   x   {% endfilter %}",
    "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]",
    "{% macro m(a, b=2) %}{{ a }}{{ b }}[{{ c }}]{% endmacro %}{{ m(1) }}|{{ m(1, b=5) }}|{{ m() }}|{{ m(b=3, a=4) }}",
    "{% macro m(a) %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, z=3) }}",
    "{% macro m() %}{{ y }}{% endmacro %}{% set y = 3 %}{{ m() }}{% set y = 4 %}{{ m() }}{% for y in [7] %}{{ m() }}{% endfor %}",
    "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(6) }}",
    "{% macro outer() %}{{ inner() }}{% endmacro %}{% macro inner() %}in{% endmacro %}{{ outer() }} {{ outer() ~ '!' }}",
    "{% macro m(namespace='f') %}{{ namespace }}{% endmacro %}{{ m() }} {{ m('g') }}",
    "{% set ns = namespace(v=0) %}{% macro bump() %}{% set ns.v = ns.v + 1 %}{% endmacro %}{{ bump() }}{{ bump() }}{{ ns.v }}",
    "{{ range(3)|list }} {{ range(1, 5, 2)|list }} {% for i in range(3) %}{{ i }}{% endfor %} {{ range(5, 0, -2)|list }}",
    "{{ dict(a=1, b=2) }} {{ namespace(x=1).x }} {{ strftime_now('%d %b %Y %H:%M') }} {{ strftime_now('%Y-%m-%dT%H:%M:%S%z') }}",
    "{% generation %}gen {{ 1 }}{% endgeneration %}",
    # errors the templates raise or Python raises
    "{{ raise_exception('custom failure: ' ~ l|length) }}",
    "{% if true %}{{ raise_exception('raised in if') }}{% endif %}",
    "{{ u.x.y }}", "{{ undefined_thing.x }}", "{{ undefined_thing[0] }}", "{{ 'a' + undefined_thing }}",
    "{{ 1 < 'a' }}", "{{ 'a' + 1 }}", "{{ 1 / 0 }}", "{{ none|tojson }}{{ undefined_thing|tojson }}",
    "{{ l|map('int')|tojson }}", "{{ (l|select)|length }}", "{{ d.items()|tojson }}",
    "{% for a, b in [(1,2,3)] %}{% endfor %}", "{% set x = 5 %}{% set x.y = 1 %}",
    "{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", "{% macro m(a) %}{% endmacro %}{{ m(q=1) }}",
    "{{ 'a' in 1 }}", "{{ [1, 2] in d }}", "{{ {[1]: 2} }}", "{{ l.append(4) }}",
    "{{ 3 is divisibleby 0 }}", "{{ x|int }}", "{{ 'abc'.split('') }}",
]


def render(env, source, ctx):
    try:
        out = env.from_string(source).render(**ctx)
    except Raised as e:
        return {"error": str(e), "raised": True}
    except Exception as e:  # noqa: BLE001 - any error must be an error in C too
        return {"error": "%s: %s" % (type(e).__name__, e)}
    if " at 0x" in out:
        raise SystemExit("nondeterministic output: %r" % out)
    return {"expect": out}


def main():
    env = make_env()
    templates = sorted(f for f in os.listdir(DATA) if f.endswith(".jinja"))
    cases = []
    for tname in templates:
        with open(os.path.join(DATA, tname), encoding="utf-8", newline="") as fh:
            src = fh.read()
        for cname, (messages, extra) in CONVS.items():
            for agp in ((True, False) if cname in BOTH_AGP else (True,)):
                ctx = json.loads(json.dumps(base_ctx(messages, extra, agp)))
                case = {"name": "%s/%s/%s" % (tname[:-6], cname, "agp" if agp else "noagp"),
                        "template": tname, "ctx": cname, "agp": agp}
                case.update(render(env, src, ctx))
                cases.append(case)
    for i, src in enumerate(SNIPPETS):
        case = {"name": "snippet/%d" % i, "source": src, "ctx": "snippet"}
        case.update(render(env, src, json.loads(json.dumps(SNIPPET_CTX))))
        cases.append(case)
    contexts = {"snippet": SNIPPET_CTX}
    for cname, (messages, extra) in CONVS.items():
        contexts[cname] = base_ctx(messages, extra, None)
    # identical outputs (same-template copies, errors) are stored once
    outputs, index = [], {}
    for c in cases:
        if "expect" in c:
            text = c.pop("expect")
            if text not in index:
                index[text] = len(outputs)
                outputs.append(text)
            c["output"] = index[text]
    doc = {
        "generator": "scripts/make-jinja-golden.py (jinja2 %s)" % jinja2.__version__,
        "now": NOW.strftime("%Y-%m-%dT%H:%M:%S"),
        "contexts": contexts,
        "outputs": outputs,
        "cases": cases,
    }
    text = json.dumps(doc, ensure_ascii=False, indent=0) + "\n"
    path = os.path.join(DATA, "cases.json")
    if "--check" in sys.argv:
        with open(path, encoding="utf-8") as fh:
            if fh.read() != text:
                raise SystemExit("cases.json is out of date")
        return
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    nerr = sum(1 for c in cases if "error" in c)
    print("%d cases (%d errors) in %s" % (len(cases), nerr, path))


if __name__ == "__main__":
    main()
