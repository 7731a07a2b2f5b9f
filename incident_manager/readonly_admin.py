from django.contrib import admin


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """For rows that only a service function writes (and audits): admins see them,
    nobody adds or edits them here.  `deletable = False` also forbids deleting."""

    deletable = True

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return self.deletable and super().has_delete_permission(request, obj)
