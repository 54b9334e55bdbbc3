"""Property: whatever activations people try, in any order, the inviter graph stays a forest."""

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase
from rest_framework.test import APIClient

from accounts.models import User
from referrals.models import Referral
from tests.referral_graph import assert_forest, inviter_map

USERS = 6


class ActivationSequences(TestCase):
    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.tuples(st.integers(0, USERS - 1), st.integers(0, USERS - 1)), max_size=20))
    def test_graph_is_a_forest_with_at_most_one_inviter_each(self, attempts):
        users = [User.objects.create_user(f"+7911000000{i}") for i in range(USERS)]
        codes = {user.pk: Referral.objects.get(user=user).invite_code for user in users}
        first_inviter = {}

        for who, whose in attempts:
            client = APIClient()
            client.force_authenticate(users[who])
            response = client.post("/api/v1/me/invite/", {"invite_code": codes[users[whose].pk]}, format="json")
            assert response.status_code in {200, 400, 409}
            if response.status_code == 200:
                first_inviter.setdefault(who, whose)
                assert first_inviter[who] == whose  # never a second, different inviter

        parents = inviter_map()
        assert_forest(parents)
        for who, whose in first_inviter.items():
            assert parents[users[who].pk] == users[whose].pk
        counts = dict(Referral.objects.values_list("user_id", "invitees_count"))
        for user in users:
            assert counts[user.pk] == sum(parent == user.pk for parent in parents.values())
