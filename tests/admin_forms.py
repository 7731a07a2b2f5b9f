"""Submit a Django admin page's form as a browser would: every field as rendered, some
of them changed (also usable outside pytest, e.g. in a child process's script)."""

from html.parser import HTMLParser


class _FormFields(HTMLParser):
    """The name -> values a browser posts from the first form with id ending in `_form`."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.fields: list[tuple[str, str]] = []
        self._in_form = False
        self._select = None  # (name, multiple, [selected], first option)
        self._option = None
        self._textarea = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and (a.get("id") or "").endswith("_form") and not self.fields:
            self._in_form = True
        if not self._in_form:
            return
        name = a.get("name")
        if tag == "input" and name and "disabled" not in a:
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.fields.append((name, a.get("value", "on")))
                return
            self.fields.append((name, a.get("value", "")))
        elif tag == "select" and name:
            self._select = (name, "multiple" in a, [], [])
        elif tag == "option" and self._select is not None:
            value = a.get("value")
            self._option = [value, "selected" in a, ""]
        elif tag == "textarea" and name:
            self._textarea = [name, ""]

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data
        if self._option is not None:
            self._option[2] += data

    def handle_endtag(self, tag):
        if tag == "form" and self._in_form:
            self._in_form = False
        elif tag == "option" and self._option is not None:
            value, selected, text = self._option
            value = text.strip() if value is None else value
            self._select[3].append(value)
            if selected:
                self._select[2].append(value)
            self._option = None
        elif tag == "select" and self._select is not None:
            name, multiple, selected, options = self._select
            if not multiple and not selected and options:
                selected = options[:1]
            self.fields.extend((name, value) for value in selected)
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            name, text = self._textarea
            self.fields.append((name, text.removeprefix("\n")))
            self._textarea = None


def form_data(html: str, **changes) -> dict:
    """The admin form's data as rendered, with `changes` (name -> value or list) applied."""
    parser = _FormFields()
    parser.feed(html)
    data: dict[str, list[str]] = {}
    for name, value in parser.fields:
        data.setdefault(name, []).append(value)
    for name, value in changes.items():
        data[name] = value if isinstance(value, list) else [value]
    return {name: values if len(values) != 1 else values[0] for name, values in data.items()}


def submit(client, page: str, /, **changes):
    """GET an admin add or change page and POST its form back with `changes`."""
    response = client.get(page)
    assert response.status_code == 200, response.status_code
    return client.post(page, form_data(response.content.decode(), **changes))
