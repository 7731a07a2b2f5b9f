from django.contrib import admin
from django.template.loader import render_to_string


from apps.accounts.team_admin import TeamScoped, TeamScopedInline

from . import selectors
from .models import Layer, LayerMember, Override, Schedule


class LayerInline(TeamScopedInline, admin.StackedInline):
    model = Layer
    extra = 0
    show_change_link = True  # participants are edited on the layer's own page
    fields = [
        ("name", "level"),
        ("shift_length", "shift_unit", "handoff_time", "start_date"),
        ("restrict_start", "restrict_end", "restrict_weekdays"),
    ]


class OverrideInline(TeamScopedInline, admin.TabularInline):
    model = Override
    extra = 0
    fields = ["user", "start", "end", "note"]
    raw_id_fields = ["user"]


@admin.register(Schedule)
class ScheduleAdmin(TeamScoped, admin.ModelAdmin):
    team_path = "team"

    list_display = ["name", "team", "time_zone"]
    list_filter = ["team"]
    search_fields = ["name"]
    inlines = [LayerInline, OverrideInline]
    readonly_fields = ["preview"]
    fields = ["name", "team", "time_zone", "preview"]

    @admin.display(description="Next 14 days")
    def preview(self, obj):
        if obj is None or obj.pk is None:
            return "Save the schedule to see its shifts."
        return render_to_string("schedules/_shift_table.html", {"shifts": selectors.upcoming_shifts(obj), "schedule": obj})


class LayerMemberInline(TeamScopedInline, admin.TabularInline):
    model = LayerMember
    extra = 1
    fields = ["position", "user"]
    raw_id_fields = ["user"]


@admin.register(Layer)
class LayerAdmin(TeamScoped, admin.ModelAdmin):
    team_path = "schedule__team"

    list_display = ["name", "schedule", "level", "shift_length", "shift_unit", "handoff_time", "start_date"]
    list_filter = ["schedule"]
    inlines = [LayerMemberInline]
