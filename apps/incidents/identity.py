"""Identifying labels: what keeps two services' (or clusters', or tenants') problems apart.

Grouping and similarity never put two alerts in one incident when they disagree
on an identifying label, and dependency correlation never holds an incident back
behind a cause elsewhere (another cluster, region or tenant).  A label only one
of the two carries does not keep them apart.  A responder's own merge is not
checked: a person may know better.

An incident's labels are those of the alert that opened it, so an alert is
compared with the opening alert of the incident it would join.
"""

from django.db.models import F, Q
from django.db.models.fields.json import HasKey, KeyTextTransform
from django.db.models.lookups import Exact

DEFAULT = ("service", "cluster", "env", "environment", "namespace", "region", "tenant")

# Labels that name what runs rather than where: they differ between a service and
# the one it depends on by nature, so dependency correlation does not compare them.
NAMING = frozenset({"service", "namespace", "job", "app"})


def labels_of(configured: list[str] | None, grouping_rules) -> tuple[str, ...]:
    """A service's identifying labels: its own list, or the defaults plus its
    grouping rules' labels other than alertname (a rule on alertname and instance
    says instances are told apart)."""
    if configured is not None:
        return tuple(dict.fromkeys(configured))
    grouped = (name for rule in grouping_rules for name in rule.group_by if name != "alertname")
    return tuple(dict.fromkeys([*DEFAULT, *grouped]))


def conflict(a: dict[str, str], b: dict[str, str], names) -> tuple[str, str, str] | None:
    """The first identifying label on which `a` and `b` disagree, with both values."""
    for name in names:
        if name in a and name in b and a[name] != b[name]:
            return name, a[name], b[name]
    return None


def agreeing(labels: dict[str, str], names, field: str = "labels") -> Q:
    """A filter for incidents whose `field` labels do not disagree with `labels` on
    `names`.  (Lookups rather than `labels__<name>`, which would split a name with
    "__" in it.)"""
    q = Q()
    for name in names:
        if name in labels:
            q &= ~Q(HasKey(F(field), name)) | Q(Exact(KeyTextTransform(name, field), labels[name]))
    return q


def checked(names, labels: dict[str, str]) -> str:
    """For an alert's reason: which identifying labels were compared."""
    compared = [name for name in names if name in labels]
    return f"identifying labels checked: {', '.join(compared)}" if compared else "no identifying labels to check"
