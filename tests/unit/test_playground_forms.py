"""The playground forms: what reaches the relay, and the messages for what cannot."""

from playground.forms import CompletionForm, EmbeddingForm


def completion(**data):
    return CompletionForm({"model": " gpt-3.5-turbo-instruct ", "max_tokens": "64", **data})


def test_only_the_parameters_that_were_set_are_sent():
    form = completion(prompt="Once upon a time ")
    assert form.is_valid(), form.errors
    assert form.cleaned_data["prompt"] == "Once upon a time "  # the trailing space is kept
    assert form.cleaned_data["model"] == "gpt-3.5-turbo-instruct"
    assert form.params() == {"max_tokens": 64}

    form = completion(prompt="x", temperature="0.2", top_p="0.9", echo="on", stop="###\n\\n\n")
    assert form.is_valid(), form.errors
    assert form.params() == {
        "max_tokens": 64,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["###", "\n"],
        "echo": True,
    }


def test_completion_errors_say_what_is_wrong():
    form = completion(prompt=" \n ", max_tokens="0", top_p="1.5", stop="\n".join("abcde"))
    assert not form.is_valid()
    assert form.errors["prompt"] == ["Type a prompt first."]
    assert form.errors["max_tokens"] == ["Ensure this value is greater than or equal to 1."]
    assert form.errors["top_p"] == ["Ensure this value is less than or equal to 1."]
    assert form.errors["stop"] == ["At most 4 stop sequences."]
    form = completion(prompt="x", stop="y" * 101)
    assert form.errors["stop"] == ["A stop sequence is at most 100 characters."]


def test_embedding_texts_are_lines_without_blanks():
    form = EmbeddingForm({"model": "text-embedding-3-small", "input": "\n one \n\n two\r\n  "})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["input"] == ["one", "two"]
    assert form.cleaned_data["dimensions"] is None


def test_embedding_limits():
    lines = "\n".join(f"t{n}" for n in range(65))
    form = EmbeddingForm({"model": "m", "input": lines, "dimensions": "3073"})
    assert form.errors["input"] == ["At most 64 texts at once; this has 65."]
    assert form.errors["dimensions"] == ["Ensure this value is less than or equal to 3072."]
    form = EmbeddingForm({"model": "m", "input": "ok\n" + "x" * 8001})
    assert form.errors["input"] == ["Text 2 is longer than 8,000 characters."]
    form = EmbeddingForm({"model": "", "input": ""})
    assert form.errors["input"] == ["Type at least one text."]
    assert form.errors["model"] == ["This field is required."]
