"""The user admin, widened with referral data; accounts' own admin knows nothing of referrals."""

import functools

from django.contrib import admin
from django.contrib.admin.utils import display_for_value, unquote
from django.core.exceptions import PermissionDenied
from django.db import router, transaction
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts.admin import PhoneSearchMixin, ReverseRelationPopupMixin
from accounts.admin import UserAdmin as AccountsUserAdmin
from accounts.models import User
from project.deadlocks import retried_on_deadlock
from referrals.invite_codes import looks_like_invite_code, normalize_invite_code
from referrals.models import Referral
from referrals.selectors import INVITE_TREE_LIMIT, get_invite_chain, get_invite_tree


class InviteCodeSearchMixin:
    """A term that reads as an invite code is searched for as one (and by Django's search), even
    when PHONE_REGION also reads it as a whole phone number: under some regions (Germany's, say)
    most all-digit codes are valid numbers. It is read as the API reads codes (Cyrillic look-alike
    letters, invisible characters copied along), as a person was told it."""

    invite_code_field = "referral__invite_code"

    def get_search_results(self, request, queryset, search_term):
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        code = normalize_invite_code(search_term)
        if code != search_term.strip() and looks_like_invite_code(code):
            found |= queryset.filter(**{self.invite_code_field: code})
        return found, may_have_duplicates

    def whole_phone(self, search_term: str) -> str | None:
        if looks_like_invite_code(normalize_invite_code(search_term)):
            return None
        return super().whole_phone(search_term)


def referral_of(user: User) -> Referral | None:
    try:
        return user.referral
    except Referral.DoesNotExist:
        return None


def user_change_link(user_id: int, text: str) -> str:
    return format_html('<a href="{}">{}</a>', reverse("admin:accounts_user_change", args=[user_id]), text)


def retried_admin_write(method):
    """An admin method taken again when PostgreSQL fails it as a deadlock, without the messages
    its failed attempt queued: a deadlock can come at COMMIT (the foreign keys' checks take locks
    there), after the success message."""

    @functools.wraps(method)
    def wrapper(self, request, *args, **kwargs):
        queued = getattr(getattr(request, "_messages", None), "_queued_messages", [])
        kept = len(queued)

        @retried_on_deadlock
        def attempt():
            del queued[kept:]
            return method(self, request, *args, **kwargs)

        return attempt()

    return wrapper


admin.site.unregister(User)


@admin.register(User)
class UserAdmin(InviteCodeSearchMixin, AccountsUserAdmin):
    list_display = (
        "phone",
        "first_name",
        "last_name",
        "invite_code",
        "inviter_phone",
        "invitees_count",
        "is_staff",
        "date_joined",
    )
    # iexact: an invite code is found whichever case it is typed in.
    search_fields = (*AccountsUserAdmin.search_fields, "=referral__invite_code")
    search_help_text = _("Phone, name or invite code.")
    invite_tree_limit = INVITE_TREE_LIMIT  # members listed on the invite tree page
    # Invite codes and activations are not fields of the form at all: only the activation
    # service writes them, so the admin shows them and nothing more.
    readonly_fields = (
        *AccountsUserAdmin.readonly_fields,
        "invite_code",
        "invited_by",
        "activated_at",
        "invitees_count",
        "invite_tree",
    )
    fieldsets = (
        *AccountsUserAdmin.fieldsets,
        (_("Referral"), {"fields": ("invite_code", "invited_by", "activated_at", "invitees_count", "invite_tree")}),
    )

    def get_queryset(self, request):
        # The changelist and the change page read the referral and the inviter in the same query.
        return super().get_queryset(request).select_related("referral__invited_by__user")

    @admin.display(description=_("invite code"), ordering="referral__invite_code")
    def invite_code(self, user):
        referral = referral_of(user)
        return referral.invite_code if referral else self.get_empty_value_display()

    @admin.display(description=_("invited by"), ordering="referral__invited_by__user__phone")
    def inviter_phone(self, user):
        referral = referral_of(user)
        return referral.invited_by.user.phone if referral and referral.invited_by else None

    @admin.display(description=_("invited by"))
    def invited_by(self, user):
        referral = referral_of(user)
        if referral is None or referral.invited_by is None:
            return self.get_empty_value_display()  # on a read-only field, None would print as "None"
        inviter = referral.invited_by
        return format_html("{} ({})", user_change_link(inviter.user_id, inviter.user.phone), inviter.invite_code)

    @admin.display(description=_("activated at"))
    def activated_at(self, user):
        referral = referral_of(user)
        # display_for_value: the local, localized form the admin uses for its own datetime fields.
        return display_for_value(referral.activated_at if referral else None, self.get_empty_value_display())

    @admin.display(description=_("invitees"), ordering="referral__invitees_count")
    def invitees_count(self, user):
        referral = referral_of(user)
        return referral.invitees_count if referral else self.get_empty_value_display()

    @admin.display(description=_("invite tree"))
    def invite_tree(self, user):
        url = reverse("admin:accounts_user_invite_tree", args=[user.pk])
        return format_html('<a href="{}">{}</a>', url, _("Invitees and inviters of this user"))

    # A deletion locks the user's row (accounts.admin), then the user's referral row, then their
    # inviter's (the count, the newest invitees): against an activation in the same tree, which locks
    # referral rows in primary-key order, it can deadlock, and PostgreSQL fails one of them. The
    # admin's side is taken again.
    @retried_admin_write
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, extra_context)

    @retried_admin_write
    def delete_view(self, request, object_id, extra_context=None):
        return super().delete_view(request, object_id, extra_context)

    @retried_admin_write
    def changelist_view(self, request, extra_context=None):
        if request.method != "POST":
            return super().changelist_view(request, extra_context)
        # An action's writes in one transaction: the delete action logs its deletions, then
        # deletes, and without one its log stayed when the deletion failed.
        with transaction.atomic(using=router.db_for_write(self.model)):
            return super().changelist_view(request, extra_context)

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # A referral is part of its user and goes with them; nobody may delete one alone, so
        # ReferralAdmin's refusal must not stand in the way of deleting the user.
        perms_needed.discard(Referral._meta.verbose_name)
        return deleted, counts, perms_needed, protected

    def get_urls(self):
        # Before the inherited ones: "<path:object_id>/" would otherwise swallow this URL.
        return [
            path(
                "<path:object_id>/invite-tree/",
                self.admin_site.admin_view(self.invite_tree_view),
                name="accounts_user_invite_tree",
            ),
            *super().get_urls(),
        ]

    def invite_tree_view(self, request, object_id):
        user = self.get_object(request, unquote(object_id))
        if user is None:
            raise Http404(_("No such user."))
        if not self.has_view_permission(request, user):
            raise PermissionDenied
        tree = get_invite_tree(user_id=user.pk, limit=self.invite_tree_limit)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Invite tree of %(phone)s") % {"phone": user.phone},
            "opts": self.opts,
            "original": user,
            "referral": referral_of(user),
            "chain": get_invite_chain(user_id=user.pk),
            "tree": tree,
        }
        return TemplateResponse(request, "admin/referrals/invite_tree.html", context)


@admin.register(Referral)
class ReferralAdmin(InviteCodeSearchMixin, PhoneSearchMixin, ReverseRelationPopupMixin, admin.ModelAdmin):
    """Invite codes and who activated whose: to look at, never to edit."""

    phone_search_field = "user__phone"
    invite_code_field = "invite_code"

    list_display = ("invite_code", "user", "invited_by_phone", "activated_at", "invitees_count")
    list_select_related = ("user", "invited_by__user")
    search_fields = ("=invite_code", "user__phone")
    ordering = ("-user_id",)
    fields = ("user_link", "invite_code", "invited_by_link", "activated_at", "invitees_count")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user", "invited_by__user")

    @admin.display(description=_("invited by"), ordering="invited_by__user__phone")
    def invited_by_phone(self, referral):
        return referral.invited_by.user.phone if referral.invited_by else None

    @admin.display(description=_("user"))
    def user_link(self, referral):
        return user_change_link(referral.user_id, referral.user.phone)

    @admin.display(description=_("invited by"))
    def invited_by_link(self, referral):
        inviter = referral.invited_by
        return user_change_link(inviter.user_id, inviter.user.phone) if inviter else self.get_empty_value_display()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
