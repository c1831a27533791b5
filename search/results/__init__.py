"""What a study leaves behind: tracking, figures, views, reports, export, the winner model."""
