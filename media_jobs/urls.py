from django.urls import path

from media_jobs import views

app_name = "media_jobs"

urlpatterns = [path("", views.index, name="index")]
