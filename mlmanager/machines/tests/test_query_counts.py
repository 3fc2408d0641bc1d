"""Model lists cost a fixed number of queries, however many rows they show."""

from __future__ import annotations

import pytest
from django.test import Client

from mlmanager.accounts.caller import Caller
from mlmanager.machines import services
from mlmanager.machines.models import Machine
from mlmanager.machines.tests.conftest import make_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def add_models(owner, make_dataset):
    dataset = make_dataset(owner)
    machines: list[Machine] = []

    def add(count: int) -> Machine:
        for _ in range(count):
            machine = services.machine_create(
                caller=Caller.for_session(owner), dataset=dataset, outputs=["churned"]
            )
            version = make_version(machine, number=1)
            make_version(machine, number=2, activate=False)
            services.training_start(caller=Caller.for_session(owner), machine=machine)
            machines.append(machine)
            # Every model of the first one's versions list grows too.
            make_version(machines[0], number=len(machines) + 2, activate=False)
            assert version.pk
        return machines[0]

    return add


@pytest.mark.parametrize("url", ["/api/v1/models/", "/api/v1/models/{first}/versions/"])
def test_api_lists_do_not_grow_with_rows(api, add_models, url, django_assert_max_num_queries):
    first = add_models(2)
    url = url.format(first=first.pk)
    api.get(url)  # warm-up: token last-used write
    with django_assert_max_num_queries(6) as few:
        assert api.get(url).status_code == 200
    add_models(20)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert api.get(url).json()["count"] >= 20


@pytest.mark.parametrize("url", ["/models/", "/models/{first}/"])
def test_pages_do_not_grow_with_rows(owner, add_models, url, django_assert_max_num_queries):
    client = Client()
    client.force_login(owner)
    first = add_models(2)
    url = url.format(first=first.pk)
    client.get(url)
    with django_assert_max_num_queries(16) as few:
        assert client.get(url).status_code == 200
    add_models(20)
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(url)
