import django_filters

from .models import Category, Incident, Severity


class IncidentFilter(django_filters.FilterSet):
    # Repeatable (?status=triggered&status=acknowledged) so that "open" is one request.
    status = django_filters.MultipleChoiceFilter(choices=Incident.Status.choices)
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices)
    service = django_filters.CharFilter(field_name="service__slug", help_text="Service slug.")
    category = django_filters.MultipleChoiceFilter(choices=Category.choices)

    class Meta:
        model = Incident
        fields = ["status", "severity", "service", "category"]
