"""Jobs get a generic subject (what they work on) and kinds the apps register (no choices here,
so a new kind needs no migration). Existing jobs get their subject from the rows that point at
them today; reversing drops the columns (nothing to restore)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import OuterRef, Subquery

import mlmanager.jobs.models

# The models whose `job` points at the job that works on them, and that job's kind.
SUBJECTS = [
    ("datasets", "Dataset", "dataset.process"),
    ("machines", "TrainingRun", "machine.train"),
    ("predictions", "BatchPrediction", "batch.predict"),
]


def fill_subjects(apps, schema_editor):
    content_types = apps.get_model("contenttypes", "ContentType")
    jobs = apps.get_model("jobs", "Job")
    for app_label, model_name, kind in SUBJECTS:
        model = apps.get_model(app_label, model_name)
        content_type, _created = content_types.objects.get_or_create(
            app_label=app_label, model=model_name.lower()
        )
        owners = model.objects.filter(job_id=OuterRef("pk")).order_by("pk").values("pk")[:1]
        jobs.objects.filter(
            subject_id__isnull=True, kind=kind, pk__in=model.objects.values("job_id")
        ).update(subject_type=content_type, subject_id=Subquery(owners))
    # A dataset points at its latest processing job only: earlier ones (it was re-profiled)
    # name their dataset in their task's arguments.
    datasets = apps.get_model("datasets", "Dataset")
    dataset_type = content_types.objects.get(app_label="datasets", model="dataset")
    earlier = jobs.objects.filter(subject_id__isnull=True, kind="dataset.process")
    for job_id, team_id, arguments in earlier.values_list("pk", "team_id", "task_kwargs"):
        dataset_id = (arguments or {}).get("dataset_id")
        if isinstance(dataset_id, int) and datasets.objects.filter(
            pk=dataset_id, team_id=team_id
        ).exists():
            jobs.objects.filter(pk=job_id).update(subject_type=dataset_type, subject_id=dataset_id)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("jobs", "0004_workers_requeue_periodic"),
        ("datasets", "0001_initial"),
        ("machines", "0003_training_run_score_curve"),
        ("predictions", "0002_batch_pass_through"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="subject_id",
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="job",
            name="subject_type",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="contenttypes.contenttype",
            ),
        ),
        migrations.RunPython(fill_subjects, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="job",
            name="kind",
            field=models.CharField(
                max_length=40, validators=[mlmanager.jobs.models.validate_kind]
            ),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(fields=["subject_type", "subject_id"], name="job_subject"),
        ),
    ]
