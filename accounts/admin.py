import functools
from types import SimpleNamespace

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.admin.models import LogEntry
from django.contrib.admin.utils import display_for_value
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import (
    AdminPasswordChangeForm,
    AdminUserCreationForm,
    SetUnusablePasswordMixin,
    UserChangeForm,
)
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist
from django.db import router, transaction
from django.db.models import Max, Value
from django.db.models.constants import LOOKUP_SEP
from django.db.models.functions import Concat, Substr
from django.http import HttpResponse
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

# Imported first so that its registrations exist to be replaced below (accounts' admin loads first).
from rest_framework_simplejwt.token_blacklist import admin as token_admin
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.fields import INVALID_NAME, InvalidName, person_name
from accounts.models import CheckFailure, CodeSend, User
from accounts.phone_numbers import InvalidPhoneNumber, mask_phone, parse_phone
from accounts.throttles import AuthIPThrottle
from project.exception_handler import is_outage, unavailable_reply
from project.throttling import RequestsThrottled

# The views that read a user and save them: the change page and the password form.
SAVING_VIEWS = {"accounts_user_change", "auth_user_password_change"}


def written_phone_field():
    # Longer than the stored E.164 (16): "+7 (911) 000-00-00" is what people type.
    return forms.CharField(label=_("Phone"), max_length=32)


class PhoneFieldMixin:
    """Stores the phone as E.164 whatever way staff typed it, as sign-in does."""

    def clean_phone(self):
        try:
            return parse_phone(self.cleaned_data["phone"])
        except InvalidPhoneNumber:
            raise forms.ValidationError(_("Enter a valid phone number."), code="invalid_phone") from None


class UserAddForm(PhoneFieldMixin, AdminUserCreationForm):
    phone = written_phone_field()

    class Meta:
        model = User
        fields = ("phone",)


PERSON_NAMES = ("first_name", "last_name")
USER_FIELD_NAMES = {field.name for field in User._meta.concrete_fields}


class UserEditForm(PhoneFieldMixin, UserChangeForm):
    phone = written_phone_field()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The names as the page showed them come back with the form, so that a name is changed only
        # when staff changed it (UserAdmin.save_model): the person may rename themselves meanwhile.
        # A post without them (a page from before) is compared with the stored names.
        # Staff who may only view users get a form without them.
        for name in PERSON_NAMES:
            if name in self.fields and (not self.is_bound or self.add_initial_prefix(name) in self.data):
                self.fields[name].show_hidden_initial = True

    # Read as PATCH /me/ reads them: a name staff pasted must not reorder what an inviter's list shows.
    def clean_first_name(self):
        return self._person_name("first_name")

    def clean_last_name(self):
        return self._person_name("last_name")

    def _person_name(self, field: str) -> str:
        try:
            return person_name(self.cleaned_data[field])
        except InvalidName:
            raise forms.ValidationError(INVALID_NAME, code="invalid_characters") from None

    class Meta:
        model = User
        fields = "__all__"


class PasswordChangeForm(AdminPasswordChangeForm):
    # Django 5.2 joins its lazy help text to a plain string when it loads, so the page said it in
    # English whatever the admin's language (and its warning is not marked for translation).
    usable_password_help_text = format_lazy(
        '{}<ul id="id_unusable_warning" class="messagelist"><li class="warning">{}</li></ul>',
        SetUnusablePasswordMixin.usable_password_help_text,
        _("If disabled, the current password for this user will be lost."),
    )


class ReverseRelationPopupMixin:
    """A popup URL naming a reverse relation (`?_to_field=referral`) is refused (400) like any other
    field it may not name: Django 5.2 fails on one with AttributeError, a 500."""

    def to_field_allowed(self, request, to_field):
        try:
            field = self.opts.get_field(to_field)
        except FieldDoesNotExist:
            return False
        return field.concrete and super().to_field_allowed(request, to_field)


class PhoneSearchMixin:
    """A phone searched for as people write it ("8 (911) 000-00-01") finds the rows that hold it in
    E.164: support staff are told numbers in these forms.

    A whole number is looked up by the phone's index alone. Searched for as part of every phone and
    name as well, it read the whole table (a page took 150 ms at 110,000 users, growing with them)
    and could only add rows whose phone held this number inside another.
    """

    phone_search_field = "phone"
    # Else every list page counts the whole table a second time, for "(N total)" beside a search's count.
    show_full_result_count = False

    def get_search_results(self, request, queryset, search_term):
        phone = self.whole_phone(search_term)
        if phone is None:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(**{self.phone_search_field: phone}), False

    def whole_phone(self, search_term: str) -> str | None:
        """The number `search_term` writes in full, in E.164; None to search as Django does.

        Whole for PHONE_REGION: under some regions (not Russia's) a shorter run of digits is a
        valid number too, and is then looked up as that number, not as a part of others.
        """
        try:
            return parse_phone(search_term)
        except InvalidPhoneNumber:
            return None


@admin.register(User)
class UserAdmin(PhoneSearchMixin, ReverseRelationPopupMixin, DjangoUserAdmin):
    form = UserEditForm
    add_form = UserAddForm
    change_password_form = PasswordChangeForm
    ordering = ("-date_joined",)
    list_display = ("phone", "first_name", "last_name", "is_staff", "date_joined")
    list_filter = ("is_staff", "is_superuser", "is_active")
    search_fields = ("phone", "first_name", "last_name")
    readonly_fields = ("date_joined", "last_in_app", "last_admin_sign_in")
    fieldsets = (
        (None, {"fields": ("phone", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name")}),
        (_("Permissions"), {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        (_("Important dates"), {"fields": ("last_in_app", "last_admin_sign_in", "date_joined")}),
    )
    # People sign in by SMS code: a password is only needed for staff, so it can be left off.
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("phone", "usable_password", "password1", "password2")}),)
    actions = ["sign_out_everywhere"]

    @admin.action(description=_("Sign out everywhere"), permissions=["change"])
    def sign_out_everywhere(self, request, queryset):
        """Revoke every live refresh token of the users (a lost phone, a number given to someone new)."""
        with transaction.atomic(using=router.db_for_write(self.model)):
            # FOR UPDATE: a refresh or sign-in takes its user's row first (FOR KEY SHARE), so one under
            # way finishes before this reads the tokens, and one after it finds its token revoked.
            users = [pk for pk, _phone in _lock_users(queryset.values_list("pk", flat=True))]
            live = OutstandingToken.objects.filter(user_id__in=users, expires_at__gt=timezone.now())
            revoked = BlacklistedToken.objects.bulk_create(
                [BlacklistedToken(token=token) for token in live.filter(blacklistedtoken__isnull=True)]
            )
        self.message_user(request, _("Refresh tokens revoked: %(count)d.") % {"count": len(revoked)})

    # Every sign-in and refresh records its refresh token; Django's last_login is the admin's alone
    # (sign-in by SMS leaves it, to spare each sign-in a write of the user's row).
    @admin.display(description=_("Last sign-in or refresh in the app"))
    def last_in_app(self, user):
        newest = OutstandingToken.objects.filter(user=user).aggregate(newest=Max("created_at"))["newest"]
        return display_for_value(newest, self.get_empty_value_display())

    @admin.display(description=_("Last admin sign-in"))
    def last_admin_sign_in(self, user):
        return display_for_value(user.last_login, self.get_empty_value_display())

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.method == "POST" and getattr(request.resolver_match, "url_name", None) in SAVING_VIEWS:
            # save() inserts a row when its UPDATE finds none, so a user saved after another staff
            # member deleted them would come back. Read under the row's lock, a deletion that has
            # reached the row is waited for, and the page then finds the user gone.
            queryset = queryset.select_for_update(no_key=True, of=("self",))
        return queryset

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
            return
        # Only what staff changed: the form holds every field as the page showed it, and the names
        # may have changed since (PATCH /me/); none changed, nothing is written.
        obj.save(update_fields=[name for name in form.changed_data if name in USER_FIELD_NAMES])

    # Django's collector reads what refers to a user, clears or deletes it, and then deletes the
    # user. Locked first, the users' rows keep sign-ins and refreshes (which read the user under
    # FOR KEY SHARE before they record a refresh token) waiting for the deletion: none can record a
    # token the collector has not seen, nor hold a record the deletion must clear while it waits for
    # the user's row (a deadlock).
    def delete_model(self, request, obj):
        deleted = _lock_users([obj.pk])
        super().delete_model(request, obj)
        _mask_phones_in_history(deleted)

    def delete_queryset(self, request, queryset):
        deleted = _lock_users(queryset.values_list("pk", flat=True))
        super().delete_queryset(request, queryset)
        _mask_phones_in_history(deleted)

    def user_change_password(self, request, id, form_url=""):
        # Django runs this view outside a transaction, and the row's lock needs one.
        with transaction.atomic(using=router.db_for_write(self.model)):
            return super().user_change_password(request, id, form_url)


def _lock_users(user_ids) -> list[tuple[int, str]]:
    # In the transaction of a deletion (the delete view's, the list action's) or of signing out
    # everywhere, before anything else; by id, as two of them lock.
    users = User.objects.select_for_update(of=("self",)).filter(pk__in=list(user_ids)).order_by("pk")
    return list(users.values_list("pk", "phone"))


def _mask_phones_in_history(users: list[tuple[int, str]]) -> None:
    """The admin's history names a user by phone (str(user)), and a phone's sign-in records by phone and
    time (support deleting refused checks), and would keep them long after the account is gone: the
    deleted users' entries, their deletion's included (logged before it), keep the phone masked."""
    users_type = ContentType.objects.get_for_model(User, for_concrete_model=False)
    records_types = ContentType.objects.get_for_models(CheckFailure, CodeSend).values()
    for pk, phone in users:
        masked = mask_phone(phone)
        LogEntry.objects.filter(content_type=users_type, object_id=str(pk)).update(object_repr=masked)
        LogEntry.objects.filter(content_type__in=records_types, object_repr__startswith=f"{phone} ").update(
            object_repr=Concat(Value(masked), Substr("object_repr", len(phone) + 1))
        )


class SignInRecordAdmin(PhoneSearchMixin, admin.ModelAdmin):
    """Read-only records of the sign-in limits; deleting a phone's failures lifts its lock."""

    search_fields = ("phone",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CheckFailure)
class CheckFailureAdmin(SignInRecordAdmin):
    list_display = ("phone", "failed_at")
    ordering = ("-failed_at",)


@admin.register(CodeSend)
class CodeSendAdmin(SignInRecordAdmin):
    list_display = ("phone", "sent_at")
    ordering = ("-sent_at",)


class RefreshTokenAdmin(PhoneSearchMixin, ReverseRelationPopupMixin, token_admin.OutstandingTokenAdmin):
    """SimpleJWT's page of issued refresh tokens, without the token itself: whoever reads it can sign in
    as its user for up to 30 days, and the admin's view permission should not grant that. Its columns
    are named here, in the admin's language (SimpleJWT's model fields have no translated names)."""

    list_display = fields = ("refresh_token_id", "token_user", "issued_at", "valid_until")
    phone_search_field = "user__phone"
    search_fields = ("=user__id", "user__phone", "jti")

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def lookup_allowed(self, lookup, value, request):
        # ?token__startswith=... in the list's URL would give the token away a character at a time.
        return lookup.split(LOOKUP_SEP)[0] != "token" and super().lookup_allowed(lookup, value, request)

    @admin.display(description=_("token id"), ordering="jti")
    def refresh_token_id(self, token):
        return token.jti

    @admin.display(description=_("user"), ordering="user")
    def token_user(self, token):
        return token.user

    @admin.display(description=_("issued at"), ordering="created_at")
    def issued_at(self, token):
        return display_for_value(token.created_at, self.get_empty_value_display())

    @admin.display(description=_("valid until"), ordering="expires_at")
    def valid_until(self, token):
        return display_for_value(token.expires_at, self.get_empty_value_display())


class BlacklistedRefreshTokenAdmin(PhoneSearchMixin, ReverseRelationPopupMixin, token_admin.BlacklistedTokenAdmin):
    """The revoked refresh tokens, read-only: changing or deleting an entry would bring a token that
    was logged out or rotated back to life. Columns as on the issued tokens' page."""

    list_display = fields = ("refresh_token_id", "token_user", "issued_at", "valid_until", "revoked_at")
    phone_search_field = "token__user__phone"
    search_fields = ("=token__user__id", "token__user__phone", "token__jti")

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return request.method in ("GET", "HEAD") and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("token id"), ordering="token__jti")
    def refresh_token_id(self, blacklisted):
        return blacklisted.token.jti

    @admin.display(description=_("user"), ordering="token__user")
    def token_user(self, blacklisted):
        return blacklisted.token.user

    @admin.display(description=_("issued at"), ordering="token__created_at")
    def issued_at(self, blacklisted):
        return display_for_value(blacklisted.token.created_at, self.get_empty_value_display())

    @admin.display(description=_("valid until"), ordering="token__expires_at")
    def valid_until(self, blacklisted):
        return display_for_value(blacklisted.token.expires_at, self.get_empty_value_display())

    @admin.display(description=_("revoked at"), ordering="blacklisted_at")
    def revoked_at(self, blacklisted):
        return display_for_value(blacklisted.blacklisted_at, self.get_empty_value_display())


for model, model_admin in ((OutstandingToken, RefreshTokenAdmin), (BlacklistedToken, BlacklistedRefreshTokenAdmin)):
    admin.site.unregister(model)
    admin.site.register(model, model_admin)


def limited_per_ip(login):
    """The admin's password form under the API's per-IP limit (AUTH_IP_RATE, its own counter): Django
    itself lets a client try passwords as fast as it can send them."""

    @functools.wraps(login)
    def view(request, extra_context=None):
        if request.method != "POST":
            return login(request, extra_context)
        throttle = AuthIPThrottle()
        try:
            allowed = throttle.allow_request(request, SimpleNamespace(throttle_scope="admin"))
        except Exception as exc:
            if not is_outage(exc):  # the counters' Redis or database is down or refuses writes: as the API answers
                raise
            return unavailable_reply(request)  # here, not from the 500 handler, which DEBUG passes by
        if not allowed:
            refusal = RequestsThrottled(wait=throttle.wait())
            return HttpResponse(str(refusal.detail), status=429, headers={"Retry-After": str(refusal.wait)})
        return login(request, extra_context)

    return view


class PhoneLoginForm(AdminAuthenticationForm):
    """The admin's sign-in takes a phone as people write it (the user's natural key finds the account);
    Django's form would cut the field off at the stored E.164's 16 characters."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        written = written_phone_field().max_length
        self.fields["username"].max_length = written
        self.fields["username"].widget.attrs["maxlength"] = written


admin.site.login_form = PhoneLoginForm
admin.site.login = limited_per_ip(admin.site.login)
