"""Django admin's saves and deletes, written to the audit trail (../docs/adr/0013).

Django admin records its edits in `django_admin_log` only: an editable table, with the
names of the changed fields and never their values.  Here every ModelAdmin of the site
(ours and the installed apps' alike: users, groups, SSO apps, beat's jobs) is given
`AuditedAdminMixin` when it is registered, so a save or a delete made in admin writes
an audit entry, in the transaction of the change:

    verb  admin.added / admin.changed / admin.deleted
    data  {"object": {"model", "pk", "repr"}, "diff": {field: [old, new]},
           "via": {"model", "pk"}}      # "via": a row edited inline on its parent's page

Secrets never reach the entry: a secret field's diff is "(set)", "(changed)" or
"(cleared)".  A field is secret when it says so (`secret = True`, as SealedField does)
or when its name holds a word such as secret, token, password or hash.
"""

import datetime
import decimal
import re
import uuid

from django.contrib import admin
from django.db import router, transaction

from .services import Actor, entry, record_all

SECRET_WORDS = {"secret", "secrets", "token", "password", "passwd", "hash", "digest", "sealed", "credential", "credentials", "private"}
URL_PASSWORD = re.compile(r"(\w[\w+.-]*://[^/@\s:]*):[^/@\s]*@")
LONGEST = 1000  # characters of a text value kept in a diff


def is_secret(field) -> bool:
    return bool(getattr(field, "secret", False)) or bool(SECRET_WORDS & set(field.name.lower().split("_")))


def _plain(value):
    """A JSON-ready form of a field's value."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        value = URL_PASSWORD.sub(r"\1:***@", value)
        return value if len(value) <= LONGEST else f"{value[:LONGEST]}… ({len(value)} characters)"
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (datetime.timedelta, decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (bytes, memoryview)):
        return "(binary)"
    return str(value)


def _empty(value) -> bool:
    return value is None or value == "" or value == [] or value == {}


def snapshot(obj) -> dict:
    """Field -> value of what admin edits on `obj` (and secrets, compared but never kept):
    editable columns (a foreign key as its id), secret columns, and many-to-many ids."""
    values = {}
    for field in obj._meta.concrete_fields:
        if field.primary_key or not (field.editable or is_secret(field)):
            continue
        values[field.name] = field.value_from_object(obj)
    if obj.pk is not None:
        for field in obj._meta.many_to_many:
            if field.remote_field.through._meta.auto_created:  # a through model is edited inline: its own entries
                values[field.name] = sorted(getattr(obj, field.name).values_list("pk", flat=True), key=str)
    return values


def diff(model, before: dict, after: dict) -> dict:
    """{field: [old, new]} of the fields that differ; a secret as "(set)" / "(changed)" / "(cleared)"."""
    secret = {f.name for f in model._meta.concrete_fields if is_secret(f)}
    changed = {}
    for name in [*after, *(n for n in before if n not in after)]:
        old, new = before.get(name), after.get(name)
        if old == new or (_empty(old) and _empty(new)):
            continue
        if name in secret:
            changed[name] = "(set)" if _empty(old) else "(cleared)" if _empty(new) else "(changed)"
        else:
            changed[name] = [_plain(old), _plain(new)]
    return changed


def object_ref(obj, pk=None) -> dict:
    return {"model": obj._meta.label_lower, "pk": _plain(obj.pk if pk is None else pk), "repr": _plain(str(obj))[:200]}


class AuditedAdminMixin:
    """Writes admin's saves (inline rows too) and deletes to the audit trail.

    The old values are read from the database just before the save; the entries are
    written when admin logs the change (log_addition / log_change), after the inlines
    and many-to-many fields are saved, inside admin's transaction."""

    def _audit_state(self, request) -> dict:
        if not hasattr(request, "_audit_admin"):
            request._audit_admin = {"saved": [], "inline": []}
        return request._audit_admin

    def save_model(self, request, obj, form, change):
        before = {}
        if change and obj.pk is not None:
            old = type(obj)._base_manager.filter(pk=obj.pk).first()
            before = snapshot(old) if old is not None else {}
        super().save_model(request, obj, form, change)
        self._audit_state(request)["saved"].append((obj, before, change))

    def save_formset(self, request, form, formset, change):
        model = formset.model
        existing = [f.instance for f in formset.initial_forms if f.instance.pk is not None]
        old = model._base_manager.in_bulk([o.pk for o in existing])
        before = {id(o): (o.pk, snapshot(old[o.pk]) if o.pk in old else {}) for o in existing}
        super().save_formset(request, form, formset, change)
        via = {"model": form.instance._meta.label_lower, "pk": _plain(form.instance.pk)}
        parent = getattr(getattr(formset, "fk", None), "name", None)  # said by "via"

        def changes(was: dict, now: dict) -> dict:
            return {name: change for name, change in diff(model, was, now).items() if name != parent}

        inline = self._audit_state(request)["inline"]
        for obj in getattr(formset, "new_objects", []):
            inline.append(("admin.added", obj, None, changes({}, snapshot(obj)), via))
        for obj, _fields in getattr(formset, "changed_objects", []):
            pk, was = before.get(id(obj), (obj.pk, {}))
            if changed := changes(was, snapshot(obj)):
                inline.append(("admin.changed", obj, pk, changed, via))
        for obj in getattr(formset, "deleted_objects", []):
            pk, was = before.get(id(obj), (obj.pk, {}))
            inline.append(("admin.deleted", obj, pk, changes(was, {}), via))

    def _record_save(self, request, obj, message):
        state = self._audit_state(request)
        actor = Actor.of(request.user)
        saved = next((s for s in state["saved"] if s[0] is obj), None)
        entries = []
        if saved is not None:
            state["saved"].remove(saved)
            _, before, change = saved
            changed = diff(type(obj), before, snapshot(obj))
            if changed or not change:
                verb = "admin.changed" if change else "admin.added"
                entries.append(entry(verb, actor=actor, data={"object": object_ref(obj), "diff": changed}))
        else:
            # Saved by a view of its own (a user's password form): admin's message names
            # the fields, the values are gone; mask them all.
            fields = [name for part in (message or []) if isinstance(part, dict)
                      for name in part.get("changed", {}).get("fields", [])]
            entries.append(entry("admin.changed", actor=actor, data={
                "object": object_ref(obj), "diff": {str(name): "(changed)" for name in fields}}))
        for verb, inline_obj, pk, changed, via in state["inline"]:
            entries.append(entry(verb, actor=actor, data={"object": object_ref(inline_obj, pk), "diff": changed, "via": via}))
        state["inline"] = []
        record_all(entries)

    def log_addition(self, request, obj, message):
        self._record_save(request, obj, message)
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        self._record_save(request, obj, message)
        return super().log_change(request, obj, message)

    def delete_model(self, request, obj):
        with transaction.atomic(using=router.db_for_write(type(obj))):
            ref, before = object_ref(obj), snapshot(obj)
            super().delete_model(request, obj)
            record_all([entry("admin.deleted", actor=Actor.of(request.user),
                              data={"object": ref, "diff": diff(type(obj), before, {})})])

    def delete_queryset(self, request, queryset):
        with transaction.atomic(using=router.db_for_write(queryset.model)):
            gone = [(object_ref(obj), snapshot(obj)) for obj in queryset]
            super().delete_queryset(request, queryset)
            actor = Actor.of(request.user)
            record_all([entry("admin.deleted", actor=actor, data={"object": ref, "diff": diff(queryset.model, before, {})})
                        for ref, before in gone])


def audited(admin_class: type) -> type:
    """`admin_class` with AuditedAdminMixin first in its bases (itself if it has it)."""
    if issubclass(admin_class, AuditedAdminMixin):
        return admin_class
    return type(admin_class.__name__, (AuditedAdminMixin, admin_class),
                {"__module__": admin_class.__module__, "__qualname__": admin_class.__qualname__})


class AuditedAdminSite(admin.AdminSite):
    """The project's admin site (admin_apps.AuditedAdminConfig makes it the default):
    whatever is registered on it is audited."""

    def register(self, model_or_iterable, admin_class=None, **options):
        super().register(model_or_iterable, audited(admin_class or admin.ModelAdmin), **options)
