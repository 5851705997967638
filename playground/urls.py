from django.urls import path

from playground import views

app_name = "playground"

urlpatterns = [
    path("", views.completions, name="completions"),
    path("completions/stream/", views.completion_stream, name="completion_stream"),
    path("embeddings/", views.embeddings, name="embeddings"),
    path("embeddings/download.json", views.download_json, name="download_json"),
    path("embeddings/download.csv", views.download_csv, name="download_csv"),
]
