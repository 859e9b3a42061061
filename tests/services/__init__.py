"""Real storage services for tests and benches, started from the project's
own scripts and stopped by PID: Ceph RGW (S3), OpenSSH's sshd (SFTP) and
rclone's restic server (``rest:``)."""
