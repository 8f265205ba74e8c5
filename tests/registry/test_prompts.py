import pytest

from tracemark.exceptions import ConflictError, InvalidInputError, NotFoundError


def test_each_registration_is_a_new_immutable_version(tracking):
    tm = tracking
    v1 = tm.register_prompt("qa", "Answer: {{ question }}", commit_message="first", tags={"a": 1})
    v2 = tm.register_prompt("qa", "Answer briefly: {{question}} in {{ lang }}")
    assert (v1.version, v2.version) == (1, 2)
    assert v1.tags == {"a": "1"} and v1.commit_message == "first"
    loaded = tm.load_prompt("prompts:/qa/1")
    assert loaded.template == "Answer: {{ question }}"
    assert loaded.variables == ["question"]
    assert tm.load_prompt("prompts:/qa@latest").version == 2
    assert tm.load_prompt("qa").version == 2
    assert tm.load_prompt("qa", version=1).version == 1
    assert tm.get_prompt("qa").latest_version == 2


def test_format_fills_text_and_chat_templates_and_names_a_missing_variable(tracking):
    tm = tracking
    text = tm.register_prompt("greet", "Hello {{ name }}, {{name}}!")
    assert text.format(name="Ana", unused=1) == "Hello Ana, Ana!"
    chat = tm.register_prompt(
        "chat",
        [
            {"role": "system", "content": "You are {{ persona }}."},
            {"role": "user", "content": "{{ question }}"},
        ],
    )
    loaded = tm.load_prompt("prompts:/chat/1")
    assert loaded.is_chat and loaded.variables == ["persona", "question"]
    assert loaded.format(persona="terse", question="Why?") == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Why?"},
    ]
    with pytest.raises(InvalidInputError, match="'question'") as caught:
        chat.format(persona="terse")
    assert caught.value.field == "question"


def test_aliases_move_between_versions_and_can_be_deleted(tracking):
    tm = tracking
    for text in ("one {{x}}", "two {{x}}", "three {{x}}"):
        tm.register_prompt("summary", text)
    tm.set_prompt_alias("summary", "production", 1)
    assert tm.load_prompt("prompts:/summary@production").version == 1
    tm.set_prompt_alias("summary", "production", 3)
    loaded = tm.load_prompt("prompts:/summary@production")
    assert loaded.version == 3 and loaded.aliases == ["production"]
    assert tm.get_prompt("summary").aliases == {"production": 3}
    tm.delete_prompt_alias("summary", "production")
    with pytest.raises(NotFoundError, match="alias 'production'"):
        tm.load_prompt("prompts:/summary@production")
    with pytest.raises(NotFoundError):
        tm.delete_prompt_alias("summary", "production")


def test_bad_names_aliases_versions_and_uris_are_clear_errors(tracking):
    tm = tracking
    tm.register_prompt("qa", "x")
    with pytest.raises(NotFoundError, match="version 7"):
        tm.set_prompt_alias("qa", "prod", 7)
    with pytest.raises(NotFoundError, match="'nope'"):
        tm.load_prompt("prompts:/nope/1")
    with pytest.raises(InvalidInputError, match="reserved"):
        tm.set_prompt_alias("qa", "latest", 1)
    with pytest.raises(InvalidInputError):
        tm.register_prompt("bad/name", "x")
    with pytest.raises(InvalidInputError):
        tm.register_prompt("qa", "")
    with pytest.raises(InvalidInputError):
        tm.register_prompt("qa", [{"content": "no role"}])
    with pytest.raises(InvalidInputError, match="prompts:/<name>/<version>"):
        tm.load_prompt("prompts:/qa")
    with pytest.raises(InvalidInputError):
        tm.load_prompt("models:/qa/1")


def test_search_prompts_filters_on_name_and_tags_and_pages(tracking, client):
    tm = tracking
    for name in ("support-a", "support-b", "sales"):
        tm.register_prompt(name, "{{x}}")
    client.set_prompt_tag("support-b", "team", "care")
    assert [p.name for p in tm.search_prompts()] == ["sales", "support-a", "support-b"]
    found = tm.search_prompts(filter_string="name LIKE 'support-%'")
    assert [p.name for p in found] == ["support-a", "support-b"]
    tagged = tm.search_prompts(filter_string="tags.team = 'care'")
    assert [(p.name, p.tags) for p in tagged] == [("support-b", {"team": "care"})]
    first = tm.search_prompts(max_results=2)
    assert len(first) == 2 and first.token
    second = tm.search_prompts(max_results=2, page_token=first.token)
    assert [p.name for p in second] == ["support-b"] and second.token is None
    with pytest.raises(InvalidInputError, match="cannot filter prompts"):
        tm.search_prompts(filter_string="colour = 'red'")
    versions = tm.search_prompt_versions("sales")
    assert [v.version for v in versions] == [1]


def test_deleting_an_aliased_version_needs_force(tracking, client):
    tm = tracking
    tm.register_prompt("qa", "one")
    tm.register_prompt("qa", "two")
    tm.set_prompt_alias("qa", "production", 1)
    with pytest.raises(ConflictError, match="production"):
        client.delete_prompt_version("qa", 1)
    client.delete_prompt_version("qa", 2)
    client.delete_prompt_version("qa", 1, force=True)
    with pytest.raises(NotFoundError):
        tm.load_prompt("prompts:/qa/1")
    tm.register_prompt("qa", "three")
    tm.set_prompt_alias("qa", "production", 3)
    with pytest.raises(ConflictError):
        client.delete_prompt("qa")
    client.delete_prompt("qa", force=True)
    with pytest.raises(NotFoundError):
        tm.get_prompt("qa")


def test_prompts_loaded_in_a_trace_are_recorded_and_searchable(tracking):
    tm = tracking
    tm.register_prompt("qa", "Q: {{q}}")
    for _ in range(3):
        tm.register_prompt("style", "Be brief")

    with tm.start_span("answer"):
        tm.load_prompt("prompts:/qa/1").format(q="hi")
        tm.load_prompt("prompts:/style@latest")
        tm.load_prompt("prompts:/qa/1")
    with tm.start_span("other"):
        tm.load_prompt("prompts:/style/1")
    tm.load_prompt("prompts:/qa/1")  # outside any trace: nothing to record on
    tm.flush()

    found = tm.search_traces(filter_string="metadata.`tracemark.prompts` LIKE '%qa@1%'")
    assert [t.name for t in found] == ["answer"]
    assert found[0].metadata["tracemark.prompts"] == "qa@1,style@3"
    exact = tm.search_traces(filter_string="metadata.`tracemark.prompts` = 'style@1'")
    assert [t.name for t in exact] == ["other"]
