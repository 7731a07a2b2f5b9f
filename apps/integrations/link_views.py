"""Portal pages where people link an outside identity (their Slack user) to their account."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from . import slack_linking


@login_required
@require_http_methods(["GET", "POST"])
def slack_link(request, token: str):
    """GET asks "link Slack user U… of workspace T… to you?"; POST does it."""
    try:
        workspace, slack_user_id = slack_linking.read_token(token)
    except slack_linking.InvalidLink as exc:
        return render(request, "integrations/slack_link.html", {"error": str(exc)}, status=400)
    context = {"workspace": workspace, "slack_user_id": slack_user_id}
    if request.method == "POST":
        try:
            slack_linking.link(request.user, workspace, slack_user_id)
        except slack_linking.AlreadyLinked as exc:
            return render(request, "integrations/slack_link.html", {**context, "error": str(exc)}, status=409)
        context["linked"] = True
    return render(request, "integrations/slack_link.html", context)
