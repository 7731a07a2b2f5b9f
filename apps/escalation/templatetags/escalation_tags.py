"""{% load escalation_tags %}{% paging_plan incident %}: the dry run, for any page
that shows an incident without its view knowing about escalation."""

from django import template

from apps.incidents.models import Incident

from .. import selectors

register = template.Library()


@register.inclusion_tag("escalation/_dry_run.html")
def paging_plan(subject, title=None):
    """An incident's next escalation steps."""
    if not isinstance(subject, Incident):
        raise template.TemplateSyntaxError("paging_plan takes an incident")
    return {
        "planned": selectors.dry_run(subject),
        "title": title,
        "empty": "Not escalating: acknowledged, resolved, or no policy applies.",
    }
