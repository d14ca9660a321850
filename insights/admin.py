"""The insights page: one environment's rollups as charts, in the console.

Registered as the changelist of HourlyRollup, so it sits in the admin's menu and uses the
admin's login, tenancy (TenantScopedAdmin) and permissions: whoever may read the logs
(logs.view_notification) may read their environments' insights; nobody edits rollups.
"""

from django.contrib import admin
from django.http import Http404
from django.template.response import TemplateResponse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from accounts.admin.bases import TenantScopedAdmin
from accounts.selectors import environment_list_for_user
from insights import charts
from insights.forms import DEFAULT_PERIOD, PERIODS, InsightsFilterForm
from insights.models import COUNT_FIELDS, HourlyRollup
from insights.selectors import (
    DIMENSIONS,
    Counts,
    rollup_breakdown,
    rollup_series,
    user_series,
)


def _svg(markup: str) -> str:
    # pygal builds the SVG with an XML tree, which escapes every label and title it is given
    # (types, templates and user ids come from API callers), so its output is markup we own.
    return mark_safe(markup)  # noqa: S308


def _dash(value) -> str:
    return "-" if value is None else str(value)


def _bucket_rows_html(series, granularity: str) -> str:
    # In Python, not a template loop: a week of hours is 168 rows of 10 cells, and Django's
    # template engine spent most of the page's time on them.
    fmt = "%Y-%m-%d %H:00" if granularity == "hour" else "%Y-%m-%d"
    cells = []
    for bucket in series.buckets:
        counts = series.counts[bucket]
        rates = counts.rates
        cells.append(
            (
                bucket.strftime(fmt),
                *(getattr(counts, name) for name in COUNT_FIELDS),
                _dash(rates["delivered"]),
                _dash(rates["failed"]),
                _dash(rates["engaged"]),
            )
        )
    return format_html_join("\n", "<tr>" + "<td>{}</td>" * 10 + "</tr>", cells)


@admin.register(HourlyRollup)
class InsightsAdmin(TenantScopedAdmin):
    environment_path = "environment"

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or request.user.has_perm(
            "logs.view_notification"
        )

    def has_module_permission(self, request):
        return (
            request.user.is_active and request.user.is_staff and self.has_view_permission(request)
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise Http404("No insights in your accounts.")
        environments = list(
            environment_list_for_user(user=request.user).order_by("account__name", "name")
        )
        form = InsightsFilterForm(request.GET, environments=environments)
        context = {
            **self.admin_site.each_context(request),
            "title": "Insights",
            "opts": self.model._meta,
            "form": form,
            "environments": environments,
        }
        if not environments:
            return TemplateResponse(request, "insights/page.html", context)
        if not form.is_valid():
            if "environment" in form.errors:
                # Another tenant's environment (or none that exists): as if it did not exist.
                raise Http404("No such environment in your accounts.")
            return TemplateResponse(request, "insights/page.html", context, status=400)
        context |= self._charts(form.cleaned_data, environments)
        return TemplateResponse(request, "insights/page.html", context)

    def _charts(self, filters: dict, environments: list) -> dict:
        chosen = filters["environment"] or environments[0].id
        environment = next(each for each in environments if each.id == chosen)
        window = {"environment": environment, "start": filters["start"], "end": filters["end"]}
        granularity, user_id = filters["granularity"], filters["user_id"]
        narrow = filters["narrow"]
        period_label = PERIODS[filters.get("period") or DEFAULT_PERIOD][0]
        if user_id:
            series = user_series(**window, user_id=user_id, granularity=granularity, narrow=narrow)
            breakdown: list[tuple[str, Counts]] = []
            subject = f"user {user_id}"
        else:
            series = rollup_series(**window, granularity=granularity, narrow=narrow)
            breakdown = rollup_breakdown(**window, dimension=filters["by"], narrow=narrow)
            subject = environment.name
        # "type order_tracking, channel email": what the charts were narrowed to.
        narrowed = ", ".join(f"{name} {filters[name]}" for name in DIMENSIONS if filters.get(name))
        subject = f"{subject}, {narrowed}" if narrowed else subject
        per = "hour" if granularity == "hour" else "day"
        return {
            "environment": environment,
            "series": series,
            "rows_html": _bucket_rows_html(series, granularity),
            "breakdown": [(label, counts, counts.rates) for label, counts in breakdown],
            "by": filters["by"],
            "user_id": user_id,
            "narrowed": narrowed,
            "channel_chosen": bool(filters.get("channel")),
            "granularity": granularity,
            "period_label": period_label,
            "counts_svg": _svg(
                charts.counts_chart(
                    series, granularity=granularity, title=f"Counts per {per}, {subject}"
                )
            ),
            "rates_svg": _svg(
                charts.rates_chart(
                    series, granularity=granularity, title=f"Rates per {per}, {subject}"
                )
            ),
            "breakdown_svg": _svg(
                charts.breakdown_chart(
                    breakdown,
                    title=f"By {filters['by']}, {period_label.lower()}",
                    dimension=filters["by"],
                )
            )
            if breakdown
            else "",
        }
